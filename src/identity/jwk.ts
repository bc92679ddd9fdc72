import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { ALGORITHMS, isKnownAlg } from './algorithms.ts';
import { decodeB64url } from './b64.ts';
import { hasRocaFingerprint } from './roca.ts';

/** One key that may verify signatures, with what its JWK declared. */
export interface VerifyKey {
  readonly kid?: string;
  /** The JWK's own `alg`; when present, only that algorithm may use the key. */
  readonly alg?: string;
  readonly kty: string;
  readonly crv?: string;
  readonly key: KeyObject;
}

export interface ImportedKeySet {
  readonly keys: readonly VerifyKey[];
  /** Keys left out, and why (for the log). */
  readonly dropped: readonly { kid?: string; why: string }[];
}

/** A key set that cannot be used at all (ambiguous or mixed). */
export class KeySetError extends Error {}

const MAX_KEYS = 100;
const MIN_RSA_BITS = 2048;

/**
 * Imports a JWK or JWK Set for verification. Whole-set defects (duplicate
 * `kid`, symmetric mixed with asymmetric keys) refuse the set; a single key
 * that is unfit (encryption use, unknown `alg`, weak, private, malformed) is
 * left out, so no key ever verifies for a purpose it was not published for.
 */
export function importKeySet(input: unknown, opts: { allowSymmetric: boolean }): ImportedKeySet {
  const entries =
    isRecord(input) && Array.isArray(input.keys) ? input.keys : isRecord(input) ? [input] : null;
  if (!entries) throw new KeySetError('not a JWK or JWK Set');
  if (entries.length > MAX_KEYS) throw new KeySetError('too many keys');
  const kids = entries
    .filter(isRecord)
    .map((k) => k.kid)
    .filter((k) => k !== undefined);
  if (new Set(kids).size !== kids.length) throw new KeySetError('duplicate kid');
  const ktys = new Set(entries.filter(isRecord).map((k) => (k.kty === 'oct' ? 'oct' : 'asym')));
  if (ktys.size > 1) throw new KeySetError('symmetric and asymmetric keys mixed');
  const keys: VerifyKey[] = [];
  const dropped: { kid?: string; why: string }[] = [];
  for (const jwk of entries) {
    const result = isRecord(jwk) ? importOne(jwk, opts) : 'not an object';
    if (typeof result === 'string') {
      const kid = isRecord(jwk) && typeof jwk.kid === 'string' ? jwk.kid : undefined;
      dropped.push({ ...(kid === undefined ? {} : { kid }), why: result });
    } else keys.push(result);
  }
  return { keys, dropped };
}

/** The key, or why it was left out. */
function importOne(jwk: Record<string, unknown>, opts: { allowSymmetric: boolean }): VerifyKey | string {
  if (jwk.kid !== undefined && typeof jwk.kid !== 'string') return 'kid is not a string';
  if (jwk.use !== undefined && jwk.use !== 'sig') return 'use is not sig';
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify')))
    return 'key_ops lacks verify';
  if (jwk.alg !== undefined && !isKnownAlg(jwk.alg)) return 'alg is not a known signature algorithm';
  const spec = jwk.alg === undefined ? undefined : ALGORITHMS[jwk.alg as string];
  if (spec && spec.kty !== jwk.kty) return 'alg does not match kty';
  if (spec?.crv !== undefined && spec.crv !== jwk.crv) return 'alg does not match crv';
  const base = {
    ...(typeof jwk.kid === 'string' ? { kid: jwk.kid } : {}),
    ...(typeof jwk.alg === 'string' ? { alg: jwk.alg } : {}),
  };
  try {
    switch (jwk.kty) {
      case 'oct':
        return opts.allowSymmetric ? importOct(jwk, base) : 'symmetric keys are not accepted here';
      case 'RSA':
        return importRsa(jwk, base);
      case 'EC':
      case 'OKP':
        return importCurve(jwk, base);
      default:
        return 'unsupported kty';
    }
  } catch {
    return 'key material is invalid';
  }
}

type Base = { kid?: string; alg?: string };

function importOct(jwk: Record<string, unknown>, base: Base): VerifyKey | string {
  const k = typeof jwk.k === 'string' ? decodeB64url(jwk.k) : undefined;
  if (!k || k.length === 0) return 'k is missing or malformed';
  const min = base.alg ? ALGORITHMS[base.alg]!.minKeyBytes! : 32;
  if (k.length < min) return 'key shorter than the hash output';
  return { ...base, kty: 'oct', key: createSecretKey(k) };
}

function importRsa(jwk: Record<string, unknown>, base: Base): VerifyKey | string {
  if ('d' in jwk || 'p' in jwk || 'q' in jwk) return 'private key material in a verification key';
  const n = typeof jwk.n === 'string' ? decodeB64url(jwk.n) : undefined;
  const e = typeof jwk.e === 'string' ? decodeB64url(jwk.e) : undefined;
  if (!n || !e || n.length === 0 || e.length === 0 || n[0] === 0) return 'n or e malformed';
  const modulus = BigInt(`0x${n.toString('hex')}`);
  const exponent = BigInt(`0x${e.toString('hex')}`);
  if (modulus.toString(2).length < MIN_RSA_BITS) return 'modulus shorter than 2048 bits';
  if (exponent < 3n || exponent % 2n === 0n) return 'public exponent is not an odd number >= 3';
  if (hasRocaFingerprint(modulus)) return 'modulus has the ROCA fingerprint';
  const key = createPublicKey({ key: { kty: 'RSA', n: jwk.n as string, e: jwk.e as string }, format: 'jwk' });
  return { ...base, kty: 'RSA', key };
}

function importCurve(jwk: Record<string, unknown>, base: Base): VerifyKey | string {
  if ('d' in jwk) return 'private key material in a verification key';
  const crv = jwk.crv;
  const known = jwk.kty === 'EC' ? ['P-256', 'P-384', 'P-521'] : ['Ed25519'];
  if (typeof crv !== 'string' || !known.includes(crv)) return 'unsupported curve';
  const pub: Record<string, string> = { kty: jwk.kty as string, crv, x: String(jwk.x) };
  if (jwk.kty === 'EC') pub.y = String(jwk.y);
  // Node refuses a point that is not on the curve here.
  const key = createPublicKey({ key: pub, format: 'jwk' });
  return { ...base, kty: jwk.kty as string, crv, key };
}

export const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
