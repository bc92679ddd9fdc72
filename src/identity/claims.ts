import { authError } from './errors.ts';
import { isRecord } from './jwk.ts';

export interface ClaimRules {
  readonly issuer: string;
  /** The gateway's canonical resource URI. */
  readonly audience: string;
  readonly nowSeconds: number;
  readonly toleranceSeconds: number;
  /** Longest allowed exp - iat (gateway tokens), seconds. */
  readonly maxLifetimeSeconds?: number;
}

/** Registered-claim checks (RFC 7519 §4.1, RFC 8707): a token for any other audience is refused. */
export function checkClaims(payload: Uint8Array, rules: ClaimRules): Record<string, unknown> {
  let claims: unknown;
  try {
    claims = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
  } catch {
    throw authError('bad_claims');
  }
  if (!isRecord(claims)) throw authError('bad_claims');
  const { nowSeconds: now, toleranceSeconds: skew } = rules;
  if (claims.iss !== rules.issuer) throw authError('wrong_issuer');
  const aud = claims.aud;
  const auds = Array.isArray(aud) ? aud : [aud];
  if (!auds.includes(rules.audience)) throw authError('wrong_audience');
  if (!isTime(claims.exp)) throw authError('missing_exp');
  if (claims.exp <= now - skew) throw authError('expired');
  if (claims.nbf !== undefined && (!isTime(claims.nbf) || claims.nbf > now + skew))
    throw authError('not_yet_valid');
  if (claims.iat !== undefined && (!isTime(claims.iat) || claims.iat > now + skew))
    throw authError('iat_in_future');
  if (rules.maxLifetimeSeconds !== undefined) {
    if (!isTime(claims.iat) || claims.exp - claims.iat > rules.maxLifetimeSeconds)
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
