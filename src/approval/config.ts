import { z } from 'zod';
import { callbacksSchema, webhooksSchema } from './webhook-config.ts';

/** Who may approve: each entry names identities the gateway verified, never the caller itself. */
export const approverIdentitySchema = z.union([
  z.strictObject({ user: z.string().min(1).describe("The token's `sub`") }),
  z.strictObject({ workload: z.string().min(1).describe('A SPIFFE ID or OAuth client id') }),
  z.strictObject({
    claim: z.string().min(1).describe('A verified token claim, e.g. `groups`'),
    value: z.string().min(1).describe('Equal to the claim, or one of its values when it is a list'),
  }),
  z.strictObject({ principal: z.string().min(1).describe('A principal id as the audit log shows it') }),
]);

const OPERATOR = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export const approversSchema = z
  .strictObject({
    /** Names the CLI accepts in `--as` (the operator running it, who has the config and the state store). */
    operators: z.array(z.string().regex(OPERATOR, 'an operator name: letters, digits, . _ @ -')).default([]),
    /** Identities that may decide through the admin API; `principal: webhook:SOURCE:USER` names a callback's approver. */
    identities: z.array(approverIdentitySchema).default([]),
  })
  .prefault({});

/** Break-glass windows: asked for with `portcullis breakglass open`, opened by two other operators. */
export const breakGlassSchema = z
  .strictObject({
    /** The longest window `--ttl` may ask for. */
    maxTtlMs: z.number().int().min(1000).max(86_400_000).default(14_400_000),
    /** How long a request waits for its two approvers before it expires. */
    requestTtlMs: z.number().int().min(1000).max(86_400_000).default(900_000),
    /** How often each gateway reads the windows from the state store (and ends those past their time). */
    refreshMs: z.number().int().min(50).max(60_000).default(1000),
  })
  .prefault({});

/** Just-in-time approval of calls whose decision carries the `approval` obligation. */
export const approvalsSchema = z
  .strictObject({
    /** How long a call waits for approvers before it ends with ERR_APPROVAL_PENDING (retry to use a later grant). */
    holdMs: z.number().int().min(100).max(3_600_000).default(45_000),
    /** How long an approval may be decided and then used; past it, it expires (a waiting call is denied). */
    ttlMs: z.number().int().min(1000).max(86_400_000).default(900_000),
    /** How often a waiting client hears from its call (a progress notification or an SSE comment). */
    keepAliveMs: z.number().int().min(100).max(60_000).default(10_000),
    maxHeldPerPrincipal: z.number().int().min(1).max(10_000).default(4),
    maxHeldTotal: z.number().int().min(1).max(100_000).default(64),
    approvers: approversSchema,
    /** Signed announcements of each approval event (and break-glass alerts), JSON or Slack-shaped. */
    webhooks: webhooksSchema,
    /** Sources that may POST decisions back (`/approvals/callback/NAME` on the admin listener), each with its secret. */
    callbacks: callbacksSchema,
    breakGlass: breakGlassSchema,
  })
  .prefault({});

export type ApprovalsConfig = z.infer<typeof approvalsSchema>;
export type ApproverIdentity = z.infer<typeof approverIdentitySchema>;
export type BreakGlassConfig = z.infer<typeof breakGlassSchema>;
