import type { AllowLists } from './allow-lists.ts';

/**
 * Who is calling: the workload (SPIFFE ID or OAuth client) and the user
 * (`sub`), as established by the identity stage. Carried into policy and audit.
 */
export interface Principal {
  /** Stable key for pools, counters and audit: `anonymous`, or derived from issuer, workload and user. */
  readonly id: string;
  readonly authMethod: 'none' | 'jwt' | 'gateway-token' | 'mtls' | 'mtls+jwt';
  /** SPIFFE ID or OAuth client id. */
  readonly workload?: string;
  /**
   * The token's own workload (its client id) when a certificate's SPIFFE ID took
   * its place (mTLS + token): revoking either workload stops the caller.
   */
  readonly tokenWorkload?: string;
  /** The token's `sub`. */
  readonly user?: string;
  readonly issuer?: string;
  readonly scopes: readonly string[];
  /**
   * What the token allows (gateway tokens, and issuers configured with
   * `allowListClaims`): anything of any kind it does not name is denied. Unset: no such limit.
   */
  readonly allowed?: AllowLists;
  /** Token id (`jti`), for revocation. */
  readonly tokenId?: string;
  /** Seconds since the epoch; calls after this are refused. */
  readonly expiresAt?: number;
  /** Declared reason (gateway tokens carry one). */
  readonly reason?: string;
  /** Verified token claims, for policy attributes. Never the raw token. */
  readonly claims: Readonly<Record<string, unknown>>;
}

export const ANONYMOUS: Principal = Object.freeze({
  id: 'anonymous',
  authMethod: 'none',
  scopes: [],
  claims: {},
});
