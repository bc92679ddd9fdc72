import { z } from 'zod';

const ref = z
  .string()
  .regex(/^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/, 'must be a reference: env:NAME or file:PATH');

/** The `audit` section. Omitted: `.portcullis/audit/audit.db` beside the config, keys generated, announced loudly. */
export const auditSchema = z.strictObject({
  store: z.enum(['sqlite', 'postgres']).default('sqlite'),
  /** SQLite file, relative to the config file's directory. */
  path: z.string().min(1).default('.portcullis/audit/audit.db'),
  /** PostgreSQL connection URL, plain or as a reference. */
  url: z.string().min(1).optional().describe('postgres://... or env:NAME / file:PATH'),
  /** PostgreSQL table name prefix. */
  table: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,40}$/)
    .default('portcullis_audit'),
  /** Checkpoint origin line; the signing key's name must equal it. Defaults to the key's name. */
  origin: z
    .string()
    .regex(/^[^\s+]+$/, 'must have no spaces and no "+"')
    .optional(),
  /** Note signer key (`PRIVATE+KEY+...`). Omitted: generated beside the SQLite file on first start. */
  signingKey: ref.optional(),
  /** HMAC-SHA256 key for argument values; separate from the signing key. Omitted: generated likewise. */
  hmacKey: ref.optional(),
  checkpoint: z
    .strictObject({
      everyEntries: z.number().int().positive().default(256),
      everyMs: z.number().int().positive().default(1000),
    })
    .prefault({}),
  /**
   * What a record's acknowledgement means. Every mode: a record is committed (in
   * the database, safe from a crash of the gateway process) before its step
   * goes on. The modes choose protection against power loss (see the README):
   * `record`: each record is on stable storage before its step (fsync per commit);
   * `overlap`: the decision record's flush runs during the upstream round trip and
   * no answer is released until the call's records are on stable storage;
   * `interval`: records reach stable storage within `intervalMs`; answers do not wait.
   */
  durability: z
    .strictObject({
      mode: z.enum(['record', 'overlap', 'interval']).default('record'),
      intervalMs: z.number().int().min(1).max(1000).default(20),
    })
    .prefault({}),
  groupCommit: z
    .strictObject({
      enabled: z.boolean().default(true),
      maxBatch: z.number().int().positive().max(10_000).default(512),
    })
    .prefault({}),
  /** c2sp.org/tlog-witness endpoints; each checkpoint is pushed and their cosignatures stored with it. */
  witnesses: z
    .array(
      z.strictObject({
        url: z.url({ protocol: /^https?$/ }),
        /** The witness's cosignature verifier key: name+hex(keyid)+base64(0x04 ‖ key). */
        key: z.string().min(1),
      }),
    )
    .default([]),
  /**
   * Requests refused at the door (no or bad credentials) are recorded as counts
   * per source address and reason per interval, in at most `maxAggregates`
   * records plus one catch-all for the rest: never one record per request.
   */
  refusals: z
    .strictObject({
      intervalMs: z.number().int().min(1000).max(86_400_000).default(60_000),
      maxAggregates: z.number().int().positive().max(100_000).default(100),
    })
    .prefault({}),
  /**
   * A sandboxed upstream's connections through its egress proxy are recorded
   * as counts per host, port and method per interval: per upstream, at most
   * `maxAggregates` records of allowed ones and as many of refused ones, each
   * with a catch-all for the rest. The upstream decides how often it tries, so
   * never one record per connection.
   */
  egress: z
    .strictObject({
      intervalMs: z.number().int().min(1000).max(86_400_000).default(60_000),
      maxAggregates: z.number().int().positive().max(100_000).default(20),
    })
    .prefault({}),
  /** Exposed tool names whose argument values are safe to keep in clear ("*": all). */
  clearArguments: z.array(z.string()).default([]),
});

export type AuditConfig = z.infer<typeof auditSchema>;
