/**
 * The credential broker's contract. A backend turns "this caller, this
 * upstream, this tool, these arguments" into a credential that is scoped to
 * exactly that and expires soon; the broker records a lease for every one it
 * hands out (in the state store, so a crash leaves nothing unrevoked) and
 * revokes it at expiry or when its holder's session ends.
 *
 * Backends never fall back: a backend that cannot issue throws
 * `ERR_CREDENTIAL_UNAVAILABLE` and the call is denied.
 */

/** How long one credential serves: one call (minted JWT), one caller (token exchange, a database role per principal) or one session. */
export type LeaseGranularity = 'call' | 'principal' | 'session';

/** What a credential is asked for: everything it is bound to. */
export interface CredentialRequest {
  /** The verified caller (`Principal.id`). */
  readonly principal: string;
  /** The caller's own subject, for `sub` claims (`Principal.subject` or its id). */
  readonly subject: string;
  /** Who vouched for `subject` (the token's `iss`), when it came from a token: two issuers' `alice` are two callers. */
  readonly subjectIssuer?: string;
  /** The caller's bearer token when it came with one: only a token-exchange backend reads it, as the subject token, and it never goes upstream. */
  readonly subjectToken?: string;
  /** The configured upstream name. */
  readonly upstream: string;
  /** The upstream's own tool name (unprefixed) for a `tools/call`; unset for other methods. */
  readonly tool?: string;
  /** SHA-256 (hex) of the RFC 8785 canonical arguments, for binding claims. */
  readonly argsHash?: string;
  /** The downstream session key (for `session` granularity and revocation at session end). */
  readonly sessionKey: string;
  /** The call id, for audit linkage. */
  readonly callId: string;
  /** Aborted when the call is cancelled. */
  readonly signal?: AbortSignal;
}

/** A credential handed out, as recorded (never the secret itself). */
export interface Lease {
  readonly id: string;
  /** Backend kind: `minted-jwt`, `token-exchange`, `postgres-role`, `static`. */
  readonly backend: string;
  /** `Principal.id` of the holder. */
  readonly holder: string;
  readonly upstream: string;
  /** What it allows, in the backend's words (`server:tool`, an OAuth scope, a template role). */
  readonly scope: string;
  readonly sessionKey: string;
  /** Milliseconds since the epoch. */
  readonly issuedAt: number;
  /** Milliseconds since the epoch; the downstream system itself refuses it after this. */
  readonly expiresAt: number;
  /** What revocation needs (a role name, a jti); no secret. */
  readonly handle?: Readonly<Record<string, string>>;
}

/** Where a credential goes: headers on the HTTP request to the upstream, or variables of a stdio upstream started for it. */
export type Credential =
  | { readonly kind: 'headers'; readonly headers: Readonly<Record<string, string>> }
  | { readonly kind: 'env'; readonly env: Readonly<Record<string, string>> };

export interface Issued {
  readonly lease: Lease;
  readonly credential: Credential;
}

export interface CredentialBackend {
  readonly kind: string;
  readonly granularity: LeaseGranularity;
  /**
   * Its credentials cannot be recalled and expire by themselves within a
   * minute (a minted JWT): the broker records each lease in the audit log
   * only, not in the state store, and has nothing to sweep or reap for it.
   */
  readonly selfExpiring?: boolean;
  /**
   * Its credential is derived from the caller's own token (token exchange):
   * one is shared only by calls that came with that very token, so a
   * refreshed, narrowed or revoked caller token is never served its
   * predecessor's.
   */
  readonly boundToSubjectToken?: boolean;
  /**
   * Issuing touches nothing outside the gateway (a JWT it signs itself,
   * headers from its own config): a credential issued while its call's
   * decision record is still being committed acts nowhere until forward sends
   * it, and forward waits for that record.
   */
  readonly issuesLocally?: boolean;
  /** A new credential for `req`; throws ERR_CREDENTIAL_UNAVAILABLE (fail closed) when it cannot. */
  issue(req: CredentialRequest, leaseId: string): Promise<Issued>;
  /** Makes the credential unusable now (drop the role, forget the cached token); idempotent. */
  revoke(lease: Lease): Promise<void>;
  close?(): Promise<void>;
}
