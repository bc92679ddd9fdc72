import { Denial, type ErrorCode } from '../errors.ts';

/**
 * Why a credential was refused. Goes to the log and the audit record; the
 * caller only ever sees a generic message.
 */
export type AuthReason =
  | 'missing'
  | 'not_bearer'
  | 'too_large'
  | 'malformed'
  | 'bad_base64'
  | 'bad_header'
  | 'header_too_large'
  | 'alg_not_allowed'
  | 'crit_unsupported'
  | 'untrusted_key_header'
  | 'unknown_kid'
  | 'ambiguous_key'
  | 'bad_signature'
  | 'bad_claims'
  | 'issuer_unknown'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'expired'
  | 'not_yet_valid'
  | 'iat_in_future'
  | 'missing_exp'
  | 'lifetime_exceeded'
  | 'key_retired'
  | 'keys_unavailable'
  | 'revoked'
  | 'insufficient_scope'
  | 'bad_request'
  | 'cert_binding'
  | 'bad_certificate';

/** A refused credential: 401 (403 for scope, 400 when malformed) with a generic text; `reason` is for logs only. */
export class AuthError extends Denial {
  readonly reason: AuthReason;
  constructor(reason: AuthReason, detail: Record<string, unknown> = {}) {
    super(codeFor(reason), `credential refused: ${reason}`, { detail: { reason, ...detail } });
    this.reason = reason;
  }
}

export const authError = (reason: AuthReason, detail?: Record<string, unknown>): AuthError =>
  new AuthError(reason, detail);

function codeFor(reason: AuthReason): ErrorCode {
  switch (reason) {
    case 'insufficient_scope':
      return 'ERR_AUTH_INSUFFICIENT_SCOPE';
    case 'missing':
      return 'ERR_AUTH_REQUIRED';
    case 'bad_request':
      return 'ERR_AUTH_MALFORMED';
    case 'revoked':
      return 'ERR_TOKEN_REVOKED';
    case 'expired':
      return 'ERR_TOKEN_EXPIRED';
    default:
      return 'ERR_AUTH_INVALID';
  }
}
