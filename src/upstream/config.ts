import { z } from 'zod';

/**
 * Who shares one running copy of an upstream. `shared`: everyone; `principal`:
 * each caller identity gets its own; `session`: each legacy client session gets
 * its own, the only mode in which the upstream sees the client's capabilities
 * (roots, sampling, elicitation) and may send it requests.
 */
export const isolationSchema = z
  .enum(['shared', 'principal', 'session'])
  .default('principal')
  .describe('Who shares one running instance of this upstream: shared, principal (default) or session');

export type Isolation = z.infer<typeof isolationSchema>;

/** Caps on what callers can make the gateway hold; over a cap a call is refused, nothing is spawned. */
export const limitsSchema = z
  .strictObject({
    /** Legacy (initialize) sessions one caller may hold open at once. */
    sessionsPerPrincipal: z.number().int().positive().default(16),
    /** Running upstream instances (processes, HTTP connections) serving one caller. */
    instancesPerPrincipal: z.number().int().positive().default(8),
    /** Running upstream instances in all. */
    instancesTotal: z.number().int().positive().default(64),
    /** An instance no session holds and no call uses is closed after this long. */
    instanceIdleMs: z
      .number()
      .int()
      .positive()
      .default(5 * 60_000),
    /** The `Retry-After` a refused caller is given (HTTP 503). */
    retryAfterSeconds: z.number().int().positive().max(3600).default(5),
  })
  .prefault({});

export type Limits = z.infer<typeof limitsSchema>;

/**
 * What the tool-poisoning scanner does with an upstream's tool definitions and
 * instructions: a score at or above `threshold` quarantines the tool (the
 * default) or only warns; a result scoring that high taints its caller either way.
 */
export const DEFAULT_POISONING_THRESHOLD = 5;

export const poisoningSchema = z
  .strictObject({
    threshold: z.number().int().positive().max(100).default(DEFAULT_POISONING_THRESHOLD),
    action: z.enum(['quarantine', 'warn']).default('quarantine'),
  })
  .prefault({})
  .describe('Tool-poisoning heuristics: score threshold, and quarantine (default) or warn');

export type Poisoning = z.infer<typeof poisoningSchema>;
