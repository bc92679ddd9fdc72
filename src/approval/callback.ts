/**
 * Inbound approval decisions, POSTed back by a chat bot or a console: signed
 * in the Standard Webhooks format with the secret of a configured callback
 * source, each message usable once. What comes out is only a claim that the
 * approver decided; the approval service still checks who may approve what.
 */
import { z } from 'zod';
import { resolveValue } from '../config/secrets.ts';
import { PortcullisError } from '../errors.ts';
import type { RecordStore } from '../state/records.ts';
import type { CallbackSourceConfig } from './webhook-config.ts';
import { type IncomingHeaders, WebhookVerifier, webhookKey } from './webhook-signature.ts';

export interface CallbackDecision {
  readonly source: string;
  readonly approvalId: string;
  readonly decision: 'approve' | 'deny';
  /** `webhook:SOURCE:USER`, as approver acts record it. */
  readonly approver: string;
  readonly comment: string;
}

/** No control characters: the approver and comment reach logs, the audit log and chat messages. */
const text = (max: number) =>
  z
    .string()
    .max(max)
    .regex(/^[^\p{Cc}]*$/u, 'must not hold control characters');

const bodySchema = z.strictObject({
  approvalId: text(200).min(1),
  decision: z.enum(['approve', 'deny']),
  approver: text(200).min(1),
  comment: text(2000).optional(),
});

/** One verifier per configured source, keyed by its name. */
export type CallbackVerifiers = ReadonlyMap<string, WebhookVerifier>;

export interface CallbackSetup {
  /** Where `file:` references are read from: the config file's folder. */
  readonly baseDir: string;
  readonly nonces: RecordStore;
  readonly env?: NodeJS.ProcessEnv;
  readonly now?: () => number;
  readonly toleranceMs?: number;
}

/** Resolves every source's secret now: a bad one is a start-up error. */
export function callbackVerifiers(
  sources: readonly CallbackSourceConfig[],
  setup: CallbackSetup,
): CallbackVerifiers {
  return new Map(
    sources.map((source) => [
      source.name,
      new WebhookVerifier({
        key: webhookKey(resolveValue(source.secret, setup.baseDir, setup.env)),
        nonces: setup.nonces,
        scope: `callback:${source.name}`,
        ...(setup.now ? { now: setup.now } : {}),
        ...(setup.toleranceMs === undefined ? {} : { toleranceMs: setup.toleranceMs }),
      }),
    ]),
  );
}

/**
 * Verifies one callback from `source` (named by the URL it was POSTed to)
 * and reads the decision in it. Refusals: `ERR_WEBHOOK_SIGNATURE` (also for
 * an unknown source), `ERR_WEBHOOK_STALE`, `ERR_WEBHOOK_REPLAYED`,
 * `ERR_WEBHOOK_BAD_BODY`; `ERR_STATE_UNAVAILABLE` when used ids cannot be kept.
 */
export async function verifyCallback(
  verifiers: CallbackVerifiers,
  request: { readonly source: string; readonly headers: IncomingHeaders; readonly body: string | Uint8Array },
): Promise<CallbackDecision> {
  const verifier = verifiers.get(request.source);
  // The same refusal as a bad signature: a caller learns no source names.
  if (!verifier)
    throw new PortcullisError('ERR_WEBHOOK_SIGNATURE', 'Webhook refused: unknown callback source', {
      detail: { source: request.source },
    });
  const message = await verifier.verify(request.headers, request.body);
  const parsed = bodySchema.safeParse(parseJson(request.body));
  if (!parsed.success)
    throw new PortcullisError('ERR_WEBHOOK_BAD_BODY', 'Callback body is not a decision', {
      detail: {
        source: request.source,
        id: message.id,
        issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
      },
    });
  const { approvalId, decision, approver, comment } = parsed.data;
  return {
    source: request.source,
    approvalId,
    decision,
    approver: `webhook:${request.source}:${approver}`,
    comment: comment ?? '',
  };
}

function parseJson(body: string | Uint8Array): unknown {
  try {
    return JSON.parse(
      typeof body === 'string' ? body : new TextDecoder('utf-8', { fatal: true }).decode(body),
    );
  } catch {
    return undefined;
  }
}
