import { flattenedVerify } from 'jose';
import { ALGORITHMS } from './algorithms.ts';
import { decodeB64url } from './b64.ts';
import { authError } from './errors.ts';
import { isRecord, type VerifyKey } from './jwk.ts';

export interface JwsLimits {
  /** Whole compact token, in characters. */
  readonly maxTokenChars: number;
  /** Encoded protected header, in characters: bounds the JSON parse. */
  readonly maxHeaderChars: number;
}

export const DEFAULT_JWS_LIMITS: JwsLimits = { maxTokenChars: 16_384, maxHeaderChars: 4_096 };

/** Headers that would let the token choose its own verification key: never trusted. */
const KEY_CARRYING = ['jku', 'x5u', 'jwk', 'x5c'];

export interface VerifiedJws {
  readonly header: Readonly<Record<string, unknown>>;
  readonly payload: Uint8Array;
  readonly key: VerifyKey;
}

/** A compact JWS whose shape and header passed every check, before any cryptography. */
export interface InspectedJws {
  readonly header: Readonly<Record<string, unknown>>;
  readonly alg: string;
  readonly kid: string | undefined;
  readonly segments: { readonly protected: string; readonly payload: string; readonly signature: string };
  readonly payload: Buffer;
}

/**
 * Checks everything about a compact JWS that needs no key: its size, strict
 * base64url, the header's JSON, the issuer's algorithm allowlist, and the
 * headers Portcullis never honours (`crit`, `b64`, key-carrying ones).
 */
export function inspectCompactJws(
  token: unknown,
  algorithms: readonly string[],
  limits: JwsLimits = DEFAULT_JWS_LIMITS,
): InspectedJws {
  if (typeof token !== 'string' || token.length === 0) throw authError('malformed');
  if (token.length > limits.maxTokenChars) throw authError('too_large');
  const parts = token.split('.');
  if (parts.length !== 3) throw authError('malformed', { segments: parts.length });
  const [h, p, s] = parts as [string, string, string];
  if (h.length > limits.maxHeaderChars) throw authError('header_too_large');
  const hb = decodeB64url(h);
  const pb = decodeB64url(p);
  const sb = decodeB64url(s);
  if (!hb || !pb || !sb || hb.length === 0 || sb.length === 0) throw authError('bad_base64');
  const header = parseHeader(hb);
  const alg = header.alg;
  if (typeof alg !== 'string' || !algorithms.includes(alg) || !Object.hasOwn(ALGORITHMS, alg))
    throw authError('alg_not_allowed', { alg: typeof alg === 'string' ? alg.slice(0, 32) : typeof alg });
  if ('crit' in header || 'b64' in header) throw authError('crit_unsupported');
  if (KEY_CARRYING.some((k) => k in header)) throw authError('untrusted_key_header');
  if (header.kid !== undefined && typeof header.kid !== 'string') throw authError('bad_header');
  return {
    header,
    alg,
    kid: header.kid as string | undefined,
    segments: { protected: h, payload: p, signature: s },
    payload: pb,
  };
}

/**
 * Verifies a JWS in compact serialization against keys the gateway already
 * trusts, with the algorithm allowlist of the issuer. Everything about the
 * token's shape is checked before any cryptography runs.
 */
export async function verifyCompactJws(
  token: unknown,
  keys: readonly VerifyKey[],
  algorithms: readonly string[],
  limits: JwsLimits = DEFAULT_JWS_LIMITS,
): Promise<VerifiedJws> {
  const jws = inspectCompactJws(token, algorithms, limits);
  for (const key of candidatesFor(keys, jws.alg, jws.kid)) {
    try {
      await flattenedVerify(jws.segments, key.key, { algorithms: [jws.alg] });
      return { header: jws.header, payload: jws.payload, key };
    } catch {
      // try the next candidate; the outcome is decided below
    }
  }
  throw authError('bad_signature', { kid: jws.kid, alg: jws.alg });
}

function parseHeader(bytes: Buffer): Record<string, unknown> {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw authError('bad_header');
  }
  if (!isRecord(header)) throw authError('bad_header');
  return header;
}

/** The trusted keys that may verify `alg` (and `kid`, when the header names one). */
export function candidatesFor(keys: readonly VerifyKey[], alg: string, kid: string | undefined): VerifyKey[] {
  const spec = ALGORITHMS[alg]!;
  const byKid = kid === undefined ? keys : keys.filter((k) => k.kid === kid);
  if (kid !== undefined && byKid.length === 0) throw authError('unknown_kid', { kid: kid.slice(0, 128) });
  const fit = byKid.filter(
    (k) => k.kty === spec.kty && (spec.crv === undefined || k.crv === spec.crv) && (k.alg ?? alg) === alg,
  );
  if (fit.length === 0) throw authError(kid === undefined ? 'unknown_kid' : 'alg_not_allowed', { alg });
  return fit;
}
