import { z } from 'zod';
import { isLoopbackHost } from '../config/loopback.ts';

/** The admin API has no authentication of its own yet, so it may only listen on loopback. */
export const adminSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    host: z
      .string()
      .default('127.0.0.1')
      .refine(isLoopbackHost, 'the admin API may only listen on loopback until it has authentication'),
    port: z.number().int().min(0).max(65535).default(0),
  })
  .prefault({});
