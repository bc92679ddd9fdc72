import { z } from 'zod';

export const TIERS = ['read', 'read-sensitive', 'write'] as const;
export type Tier = (typeof TIERS)[number];

const toolName = z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'must be an exposed ASCII tool name');

/** A call matching this marks its caller as having read sensitive data (for exfiltration rules). */
const sensitiveMark = z.strictObject({
  /** Exposed tool name; `*` matches any run of characters. */
  tool: z.string().min(1),
  /** Top-level string argument to test; omitted: every call of the tool marks. */
  argument: z.string().min(1).optional(),
  /** Glob on the argument's value; `*` matches any run of characters. */
  pattern: z.string().min(1).optional(),
});

export const policySchema = z
  .strictObject({
    /** Cedar policy files (relative paths resolve from the config file). None: nothing is allowed. */
    files: z.array(z.string().min(1)).default([]),
    /** A candidate set evaluated beside the live one; differences are logged and counted, never enforced. */
    shadow: z.array(z.string().min(1)).default([]),
    /** Tier per exposed tool name; annotations can only make it stricter. */
    tiers: z.record(toolName, z.enum(TIERS)).default({}),
    /** Upstreams whose `readOnlyHint` may lower a tool's default tier from `write` to `read`. */
    trustAnnotations: z.array(z.string()).default([]),
    sensitive: z.array(sensitiveMark).default([]),
    /** Extra tool names counted as egress (send/post-type) besides the built-in name heuristics. */
    egress: z.array(toolName).default([]),
    session: z
      .strictObject({
        /** Window for `context.session.callsLastMinute`. */
        windowMs: z.number().int().positive().max(3_600_000).default(60_000),
        /**
         * How long a caller's sensitive read and the tools it used are remembered
         * (`context.session.sensitiveRead`, `toolsUsed`), across all its sessions.
         */
        historyMs: z
          .number()
          .int()
          .positive()
          .max(7 * 24 * 3_600_000)
          .default(6 * 3_600_000),
        /** Callers remembered at once; a new caller beyond this is refused until one's history is over. */
        maxPrincipals: z.number().int().positive().default(100_000),
      })
      .prefault({}),
    /** Offset of the local clock used for `context.time.hour`/`weekday`, in minutes from UTC. */
    utcOffsetMinutes: z.number().int().min(-840).max(840).default(0),
    /** Re-read the policy files when they change; a set that fails validation keeps the old one. */
    watch: z.boolean().default(false),
    limits: z
      .strictObject({
        maxArgumentBytes: z
          .number()
          .int()
          .positive()
          .default(256 * 1024),
        maxDepth: z.number().int().positive().max(256).default(32),
        maxReasonLength: z.number().int().positive().default(1024),
      })
      .prefault({}),
  })
  .prefault({});

export type PolicyConfig = z.infer<typeof policySchema>;
