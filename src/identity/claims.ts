import { authError } from './errors.ts';

export interface ClaimRules {
  readonly nowSeconds: number;
  readonly toleranceSeconds: number;
  /** Longest allowed exp - iat (gateway tokens), seconds. */
  readonly maxLifetimeSeconds?: number;
}

/**
 * The claim rules beyond `jose`'s registered-claim checks (which ran first):
 * `iat` not in the future (jose checks it only with a maximum token age), a
 * bounded lifetime, and string-typed identifiers.
 */
export function checkClaims(claims: Record<string, unknown>, rules: ClaimRules): Record<string, unknown> {
  const { nowSeconds: now, toleranceSeconds: skew } = rules;
  if (claims.iat !== undefined && (!isTime(claims.iat) || claims.iat > now + skew))
    throw authError('iat_in_future');
  if (rules.maxLifetimeSeconds !== undefined) {
    if (!isTime(claims.iat) || (claims.exp as number) - claims.iat > rules.maxLifetimeSeconds)
      throw authError('lifetime_exceeded');
  }
  for (const name of ['sub', 'jti', 'client_id', 'azp'])
    if (claims[name] !== undefined && typeof claims[name] !== 'string')
      throw authError('bad_claims', { claim: name });
  return claims;
}

const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** `scope` (space-separated, RFC 8693 / RFC 9068) or `scp` (array). */
export function scopesOf(claims: Record<string, unknown>): string[] {
  if (typeof claims.scope === 'string') return claims.scope.split(' ').filter(Boolean);
  if (Array.isArray(claims.scp)) return claims.scp.filter((s): s is string => typeof s === 'string');
  return [];
}
