import { createHash } from 'node:crypto';
import { deepFreeze } from '../freeze.ts';
import type { Logger } from '../observability/log.ts';
import { allowListsOf } from './allow-lists.ts';
import { decodeB64url } from './b64.ts';
import { scopesOf } from './claims.ts';
import { authError } from './errors.ts';
import { isRecord } from './jwk.ts';
import { DEFAULT_JWS_LIMITS } from './jws.ts';
import { type VerifiedJwt, verifyJwt } from './jwt.ts';
import type { KeyCache } from './key-cache.ts';
import type { Principal } from './principal.ts';

/** One issuer the gateway trusts, with its keys and rules. */
export interface TrustedIssuer {
  readonly issuer: string;
  readonly keys: KeyCache;
  readonly algorithms: readonly string[];
  readonly requiredScopes: readonly string[];
  readonly workloadClaim: string;
  /** Gateway-issued tokens: allowed_tools, jti and a bounded lifetime are required. */
  readonly gateway?: {
    readonly maxTtlSeconds: number;
    /** False when key `kid` was retired before `iatSeconds` (or is gone): the token is refused. */
    readonly couldHaveSigned: (kid: string, iatSeconds: number) => boolean;
  };
  /** The issuer's tokens carry allow lists (gateway tokens always do). */
  readonly allowListClaims?: boolean;
}

export interface AuthenticatorOptions {
  readonly resource: string;
  readonly issuers: readonly TrustedIssuer[];
  readonly requiredScopes: readonly string[];
  readonly toleranceSeconds: number;
  readonly now: () => number;
  readonly log: Logger;
  readonly maxCached?: number;
}

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/**
 * Turns an `Authorization` header into a Principal, or refuses with an
 * AuthError whose reason is for the log only. Verified tokens are cached by
 * their hash until they expire; revocation is not decided here.
 */
export class Authenticator {
  private readonly opts: AuthenticatorOptions;
  private readonly byIssuer: ReadonlyMap<string, TrustedIssuer>;
  private readonly cache = new Map<string, Principal>();

  constructor(opts: AuthenticatorOptions) {
    this.opts = opts;
    this.byIssuer = new Map(opts.issuers.map((i) => [i.issuer, i]));
  }

  async authenticate(authorization: string | undefined): Promise<Principal> {
    if (authorization === undefined || authorization === '') throw authError('missing');
    if (authorization.length > DEFAULT_JWS_LIMITS.maxTokenChars + 16) throw authError('too_large');
    const m = BEARER.exec(authorization);
    if (!m) throw authError(/^bearer\b/i.test(authorization) ? 'bad_request' : 'not_bearer');
    const token = m[1]!;
    const hash = createHash('sha256').update(token).digest('base64url');
    const cached = this.cache.get(hash);
    if (cached) {
      if (!this.expired(cached)) return cached;
      this.cache.delete(hash);
      throw authError('expired');
    }
    const principal = await this.verify(token);
    this.remember(hash, principal);
    return principal;
  }

  expired(p: Principal): boolean {
    return p.expiresAt !== undefined && p.expiresAt <= this.opts.now() / 1000 - this.opts.toleranceSeconds;
  }

  private async verify(token: string): Promise<Principal> {
    const issuer = this.issuerOf(token);
    const rules = {
      issuer: issuer.issuer,
      audience: this.opts.resource,
      algorithms: issuer.algorithms,
      nowMs: this.opts.now(),
      toleranceSeconds: this.opts.toleranceSeconds,
      ...(issuer.gateway ? { maxLifetimeSeconds: issuer.gateway.maxTtlSeconds } : {}),
    };
    let verified: VerifiedJwt;
    try {
      verified = await verifyJwt(token, await issuer.keys.current(), rules);
    } catch (err) {
      if (!(isUnknownKid(err) && (await issuer.keys.refreshForUnknownKid()))) throw err;
      verified = await verifyJwt(token, await issuer.keys.current(), rules);
    }
    const { claims, key } = verified;
    if (issuer.gateway) checkKeyRetirement(issuer.gateway, key.kid, claims.iat as number);
    return this.principalOf(issuer, claims);
  }

  /** Reads `iss` (unverified) only to pick the keys; the signature and `iss` are checked after. */
  private issuerOf(token: string): TrustedIssuer {
    const parts = token.split('.');
    if (parts.length !== 3) throw authError('malformed');
    const payload = decodeB64url(parts[1]!);
    let iss: unknown;
    try {
      iss = payload ? (JSON.parse(payload.toString('utf8')) as { iss?: unknown }).iss : undefined;
    } catch {
      throw authError('bad_claims');
    }
    if (payload === undefined) throw authError('bad_base64');
    const issuer = typeof iss === 'string' ? this.byIssuer.get(iss) : undefined;
    if (!issuer) throw authError('issuer_unknown');
    return issuer;
  }

  private principalOf(issuer: TrustedIssuer, claims: Record<string, unknown>): Principal {
    const scopes = scopesOf(claims);
    const missing = [...this.opts.requiredScopes, ...issuer.requiredScopes].filter(
      (s) => !scopes.includes(s),
    );
    if (missing.length > 0) throw authError('insufficient_scope', { missing });
    const user = str(claims.sub);
    const workload = str(claims[issuer.workloadClaim]) ?? str(claims.azp);
    // A token with no user, no client and no id could be stopped by nothing but its expiry.
    if (!user && !workload && !str(claims.jti))
      throw authError('bad_claims', { why: 'nothing to revoke it by' });
    if (issuer.gateway && (!Array.isArray(claims.allowed_tools) || !str(claims.jti) || !user))
      throw authError('bad_claims', { gatewayToken: true });
    const allowed = issuer.gateway || issuer.allowListClaims ? allowListsOf(claims) : undefined;
    if (allowed === 'invalid' || ((issuer.gateway || issuer.allowListClaims) && !allowed))
      throw authError('bad_claims', { allowLists: true });
    const id = `p_${createHash('sha256')
      .update(JSON.stringify([issuer.issuer, workload ?? null, user ?? null]))
      .digest('hex')
      .slice(0, 32)}`;
    return Object.freeze({
      id,
      authMethod: issuer.gateway ? 'gateway-token' : 'jwt',
      ...(workload ? { workload } : {}),
      ...(user ? { user } : {}),
      issuer: issuer.issuer,
      scopes,
      ...(allowed ? { allowed: deepFreeze(allowed) } : {}),
      ...(str(claims.jti) ? { tokenId: str(claims.jti) } : {}),
      expiresAt: claims.exp as number,
      ...(str(claims.reason) ? { reason: str(claims.reason) } : {}),
      // Deeply: the policy layer caches the Cedar entity built from a frozen principal.
      claims: deepFreeze(structuredClone(claims)),
    } satisfies Principal);
  }

  private remember(hash: string, p: Principal): void {
    const max = this.opts.maxCached ?? 10_000;
    if (this.cache.size >= max) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(hash, p);
  }
}

/** A retired gateway key verifies only tokens it signed before it retired. */
function checkKeyRetirement(
  gateway: NonNullable<TrustedIssuer['gateway']>,
  kid: string | undefined,
  iat: number,
): void {
  let ok: boolean;
  try {
    ok = kid !== undefined && gateway.couldHaveSigned(kid, iat);
  } catch (err) {
    throw authError('keys_unavailable', { err: String(err) });
  }
  if (!ok) throw authError('key_retired', { kid });
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const isUnknownKid = (err: unknown): boolean =>
  isRecord(err) && (err as { reason?: unknown }).reason === 'unknown_kid';
