/**
 * The `approvals.webhooks` and `approvals.callbacks` pieces of the one config
 * schema: plain data, so the config core may import it.
 */
import { z } from 'zod';

/** Every event an approval webhook may ask for; `ApprovalEventType` in types.ts names the same. */
export const WEBHOOK_EVENT_TYPES = [
  'approval.requested',
  'approval.granted',
  'approval.denied',
  'approval.expired',
  'breakglass.requested',
  'breakglass.opened',
  'breakglass.used',
  'breakglass.closed',
  'tool.quarantined',
  'server.refused',
] as const;

const REF = /^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/;

const valueOrRef = z.string().min(1).describe('Plain value, or a reference env:NAME / file:PATH');

/** A secret of at least 24 bytes: `whsec_<base64>` (Standard Webhooks) or any other string, taken as is. */
const secret = valueOrRef.describe('whsec_<base64> or a plain string; or a reference env:NAME / file:PATH');

export const webhookSchema = z.strictObject({
  /** A Slack incoming-webhook URL is itself a secret, so it may be a reference; resolved at start-up. */
  url: z
    .union([
      z.url({ protocol: /^https?$/ }),
      z.string().regex(REF, 'must be a reference env:NAME or file:PATH'),
    ])
    .describe('http(s) URL, or a reference env:NAME / file:PATH to one'),
  secret,
  format: z.enum(['json', 'slack']).default('json'),
  events: z
    .array(z.enum(WEBHOOK_EVENT_TYPES))
    .min(1)
    .refine((list) => new Set(list).size === list.length, 'must not repeat an event type')
    .default([...WEBHOOK_EVENT_TYPES]),
  timeoutMs: z.number().int().positive().max(60_000).default(5000),
});

export const callbackSourceSchema = z.strictObject({
  /** The source's name: in the callback URL and in the approver id `webhook:NAME:USER`. */
  name: z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, 'must be lowercase ASCII letters, digits, "_" or "-"'),
  secret,
});

export const webhooksSchema = z.array(webhookSchema).default([]);

export const callbacksSchema = z
  .array(callbackSourceSchema)
  .refine((list) => new Set(list.map((s) => s.name)).size === list.length, 'callback names must be unique')
  .default([]);

export type WebhookConfig = z.infer<typeof webhookSchema>;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];
export type CallbackSourceConfig = z.infer<typeof callbackSourceSchema>;
