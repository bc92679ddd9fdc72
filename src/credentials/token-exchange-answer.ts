import { decodeJwt, type JWTPayload } from 'jose';
import { PortcullisError } from '../errors.ts';

export const TOKEN_TYPE = {
  accessToken: 'urn:ietf:params:oauth:token-type:access_token',
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
} as const;

/** What the gateway asked the authorization server for: an answer promising more is refused. */
export interface Asked {
  readonly audience: string;
  /** Space-separated; unset when none was asked (the server's default applies). */
  readonly scope?: string;
  readonly maxTtlSeconds: number;
}

export interface ExchangedToken {
  readonly accessToken: string;
  /** Milliseconds since the epoch: the earlier of `expires_in` and the JWT's `exp`. */
  readonly expiresAt: number;
  /** What the token allows, as granted (the asked scope when the answer did not say). */
  readonly scope: string;
}

/** How far the server's clock may run ahead of ours when its `exp` is read against our now. */
const CLOCK_SKEW_MS = 5_000;
/** A token goes in a header: visible ASCII only, and not without bound. */
const TOKEN_SHAPE = /^[\x21-\x7e]{1,16384}$/;
const JWS_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export type AnswerDefect =
  | 'malformed'
  | 'issued_token_type'
  | 'token_type'
  | 'audience'
  | 'lifetime'
  | 'expired'
  | 'scope';

const refused = (reason: AnswerDefect, detail: Record<string, unknown> = {}): PortcullisError =>
  new PortcullisError('ERR_TOKEN_EXCHANGE_INVALID', `token exchange answer refused: ${reason}`, {
    detail: { reason, ...detail },
  });

/**
 * Checks a successful token-exchange answer (RFC 8693 section 2.2.1) against
 * what was asked, and refuses rather than trims: a Bearer access token, for
 * exactly the asked audience when it is a JWT (an opaque token's audience is
 * the server's word), living no longer than `maxTtlSeconds`, with no scope
 * beyond the asked one. The upstream verifies the token's signature; the
 * gateway only refuses to hand on a token broader than it asked for.
 */
export function checkExchangeAnswer(json: unknown, asked: Asked, now: number): ExchangedToken {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw refused('malformed');
  const answer = json as Record<string, unknown>;
  const token = answer.access_token;
  if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) throw refused('malformed');
  if (answer.issued_token_type !== TOKEN_TYPE.accessToken && answer.issued_token_type !== TOKEN_TYPE.jwt)
    throw refused('issued_token_type', { issuedTokenType: String(answer.issued_token_type) });
  if (typeof answer.token_type !== 'string' || answer.token_type.toLowerCase() !== 'bearer')
    throw refused('token_type', { tokenType: String(answer.token_type) });
  const claims = JWS_SHAPE.test(token) ? claimsOf(token) : undefined;
  if (claims) checkAudience(claims, asked.audience);
  const scope = grantedScope(answer.scope, claims, asked.scope);
  return { accessToken: token, expiresAt: expiryOf(answer.expires_in, claims, asked, now), scope };
}

function claimsOf(token: string): JWTPayload {
  try {
    return decodeJwt(token);
  } catch (err) {
    throw new PortcullisError('ERR_TOKEN_EXCHANGE_INVALID', 'token exchange answer refused: malformed', {
      detail: { reason: 'malformed', why: 'a JWS whose payload is not a claim set' },
      cause: err,
    });
  }
}

function checkAudience(claims: JWTPayload, audience: string): void {
  const aud = claims.aud;
  const exact = aud === audience || (Array.isArray(aud) && aud.length === 1 && aud[0] === audience);
  if (!exact) throw refused('audience', { aud });
}

/** The earlier of the two expiries the answer states; refused when either is beyond the asked lifetime or neither is given. */
function expiryOf(expiresIn: unknown, claims: JWTPayload | undefined, asked: Asked, now: number): number {
  const maxMs = asked.maxTtlSeconds * 1000;
  const expiries: number[] = [];
  if (expiresIn !== undefined) {
    if (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn) || expiresIn <= 0)
      throw refused('malformed', { expiresIn: String(expiresIn) });
    if (expiresIn * 1000 > maxMs) throw refused('lifetime', { expiresIn });
    expiries.push(now + expiresIn * 1000);
  }
  const exp = numericDate(claims, 'exp');
  const iat = numericDate(claims, 'iat');
  if (exp !== undefined) {
    if (exp * 1000 <= now) throw refused('expired', { exp });
    if (exp * 1000 - now > maxMs + CLOCK_SKEW_MS) throw refused('lifetime', { exp });
    if (iat !== undefined && exp - iat > asked.maxTtlSeconds) throw refused('lifetime', { exp, iat });
    expiries.push(exp * 1000);
  }
  if (expiries.length === 0) throw refused('lifetime', { why: 'no expiry given' });
  return Math.min(...expiries);
}

/** A JWT time claim, when present: a finite number of seconds, or the answer is malformed. */
function numericDate(claims: JWTPayload | undefined, name: 'exp' | 'iat'): number | undefined {
  const value: unknown = claims?.[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw refused('malformed', { [name]: String(value) });
  return value;
}

function grantedScope(stated: unknown, claims: JWTPayload | undefined, asked: string | undefined): string {
  if (stated !== undefined && typeof stated !== 'string')
    throw refused('malformed', { scope: 'not a string' });
  const inToken = claims?.scope;
  if (inToken !== undefined && typeof inToken !== 'string') throw refused('scope', { why: 'not a string' });
  if (asked !== undefined) {
    const allowed = new Set(words(asked));
    const beyond = [...words(stated ?? ''), ...words(inToken ?? '')].filter((s) => !allowed.has(s));
    if (beyond.length > 0) throw refused('scope', { beyond });
  }
  return stated ?? inToken ?? asked ?? '';
}

const words = (scope: string): string[] => scope.split(' ').filter((s) => s.length > 0);
