import type { PortcullisError } from '../errors.ts';

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
