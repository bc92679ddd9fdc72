import { z } from 'zod';

const refOrValue = z.string().min(1).describe('Plain value, or a reference env:NAME / file:PATH');

/** Shared state for replicas (revocations today): embedded SQLite, or PostgreSQL / Redis. */
export const stateSchema = z
  .discriminatedUnion('store', [
    z.strictObject({
      store: z.literal('sqlite'),
      /** Relative to the config file. */
      path: z.string().min(1).default('.portcullis/state.db'),
    }),
    z.strictObject({
      store: z.literal('postgres'),
      url: refOrValue,
      /** Table name prefix, so several gateways can share one database. */
      prefix: z
        .string()
        .regex(/^[a-z][a-z0-9_]{0,30}$/)
        .default('portcullis'),
    }),
    z.strictObject({
      store: z.literal('redis'),
      url: refOrValue,
      prefix: z.string().min(1).default('portcullis:'),
    }),
  ])
  .default({ store: 'sqlite', path: '.portcullis/state.db' });

export type StateConfig = z.infer<typeof stateSchema>;
