import { randomUUID } from 'node:crypto';
import type { AuditService } from '../audit/service.ts';
import type { PortcullisError } from '../errors.ts';
import type { Logger } from '../observability/log.ts';

export interface RefusedRequest {
  readonly time: number;
  readonly remoteAddress: string;
  /** The HTTP method, or '' on stdio. */
  readonly httpMethod: string;
  /** The HTTP status answered, or 0 on stdio. */
  readonly status: number;
  readonly code: string;
  readonly reason: string;
}

/** Records a request refused before any call existed; a failed append is logged, never thrown. */
export async function recordRefusal(audit: AuditService, log: Logger, r: RefusedRequest): Promise<void> {
  try {
    await audit.recordRefusal({ callId: randomUUID(), ...r });
  } catch (err) {
    log.error('audit of a refused request failed', { err: String(err) });
  }
}

/**
 * Why a message body was refused, in our words: a JSON.parse message quotes
 * the body, which may hold anything, so it never goes into the record.
 */
export function bodyRefusalReason(err: PortcullisError): string {
  if (typeof err.detail.reason === 'string') return err.detail.reason;
  if (err.code === 'ERR_PARSE') return 'malformed JSON';
  if (err.code === 'ERR_BODY_TOO_LARGE') return 'body too large';
  return err.message;
}
