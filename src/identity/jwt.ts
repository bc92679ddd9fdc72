import { errors, jwtVerify } from 'jose';
import { checkClaims } from './claims.ts';
import { type AuthReason, authError } from './errors.ts';
import type { VerifyKey } from './jwk.ts';
import { candidatesFor, inspectCompactJws } from './jws.ts';

export interface JwtRules {
  readonly issuer: string;
  /** The gateway's canonical resource URI (RFC 8707): a token for any other audience is refused. */
  readonly audience: string;
  readonly algorithms: readonly string[];
  readonly nowMs: number;
  readonly toleranceSeconds: number;
  /** Longest allowed exp - iat (gateway tokens), seconds. */
  readonly maxLifetimeSeconds?: number;
}

export interface VerifiedJwt {
  readonly claims: Record<string, unknown>;
  readonly key: VerifyKey;
}

/**
 * Verifies a JWT: our shape and header checks first, then `jose`'s
 * `jwtVerify` (signature, `iss`, `aud`, `exp`, `nbf`) with each trusted key
 * that fits, then the claim rules jose has no option for.
 */
export async function verifyJwt(
  token: string,
  keys: readonly VerifyKey[],
  rules: JwtRules,
): Promise<VerifiedJwt> {
  const jws = inspectCompactJws(token, rules.algorithms);
  const options = {
    algorithms: [jws.alg],
    issuer: rules.issuer,
    audience: rules.audience,
    requiredClaims: ['exp'],
    currentDate: new Date(rules.nowMs),
    clockTolerance: rules.toleranceSeconds,
  };
  for (const key of candidatesFor(keys, jws.alg, jws.kid)) {
    let claims: Record<string, unknown>;
    try {
      claims = (await jwtVerify(token, key.key, options)).payload;
    } catch (err) {
      const reason = claimRefusal(err);
      if (reason) throw authError(reason);
      continue; // a signature this key did not make: try the next candidate
    }
    return { claims: checkClaims(claims, { ...rules, nowSeconds: Math.floor(rules.nowMs / 1000) }), key };
  }
  throw authError('bad_signature', { kid: jws.kid, alg: jws.alg });
}

/** The reason for a signed token whose claims jose refused; undefined for any other failure. */
function claimRefusal(err: unknown): AuthReason | undefined {
  if (err instanceof errors.JWTExpired) return 'expired';
  if (err instanceof errors.JWTInvalid) return 'bad_claims';
  if (!(err instanceof errors.JWTClaimValidationFailed)) return undefined;
  return CLAIM_REASONS[err.claim] ?? 'bad_claims';
}

const CLAIM_REASONS: Readonly<Record<string, AuthReason>> = {
  iss: 'wrong_issuer',
  aud: 'wrong_audience',
  exp: 'missing_exp',
  nbf: 'not_yet_valid',
  iat: 'iat_in_future',
};
