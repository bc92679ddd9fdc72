import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { decodeProtectedHeader, flattenedVerify } from 'jose';
import { PortcullisError } from '../errors.ts';
import { ALGORITHMS, ASYMMETRIC_ALGORITHMS } from '../identity/algorithms.ts';
import type { Principal } from '../identity/principal.ts';
import { isObject, type JsonObject } from '../jsonrpc.ts';
import type { RecordStore } from '../state/records.ts';
import type { RegisteredKey } from './config.ts';
import { payloadOf, REQUEST_TYP, splitDetached, withoutMetaKey } from './detached.ts';

/** Where a caller's signature over its request travels. */
export const SIGNATURE_META_KEY = 'io.portcullis/signature';

const NONCE = /^[A-Za-z0-9_-]{16,128}$/;
/** Imported keys kept; a config's keys and the callers' `cnf` keys seen lately. */
const MAX_IMPORTED = 1000;

/** `_meta["io.portcullis/signature"]`: the detached JWS, and the nonce and time its payload carries. */
interface RequestSignature {
  readonly jws: string;
  readonly nonce: string;
  readonly time: number;
}

/**
 * The detached payload: the canonical JSON of the method, the params without
 * the signature (and without `_meta` when nothing else is in it), the nonce and the time.
 */
export const requestPayload = (
  method: string,
  params: JsonObject | undefined,
  nonce: string,
  time: number,
): Buffer => payloadOf({ method, params: withoutMetaKey(params ?? {}, SIGNATURE_META_KEY), nonce, time });

type SignatureCode =
  | 'ERR_REQUEST_SIGNATURE_INVALID'
  | 'ERR_REQUEST_SIGNATURE_STALE'
  | 'ERR_REQUEST_SIGNATURE_REPLAYED';
const refused = (code: SignatureCode, why: string, detail: Record<string, unknown> = {}) =>
  new PortcullisError(code, `request signature refused: ${why}`, { detail });

export interface RequestSignatureDeps {
  /** Keys config binds to callers (`attest.requests.keys`). */
  readonly registered: readonly RegisteredKey[];
  /** Used nonces, shared by replicas (records of kind `nonce`). */
  readonly nonces: RecordStore;
  readonly now: () => number;
  readonly maxSkewMs: number;
}

/**
 * Caller-signed requests: a signature verifies with a key bound to the
 * caller (its token's `cnf.jwk`, RFC 7800, or one config registers for it),
 * its time is within the skew, and its nonce is new. A request without one
 * is unsigned (policy decides what that means); any other defect refuses it.
 */
export class RequestSignatures {
  private readonly deps: RequestSignatureDeps;
  private readonly imported = new Map<string, KeyObject>();

  constructor(deps: RequestSignatureDeps) {
    this.deps = deps;
  }

  /** True when the request is signed and the signature holds; false when it carries none. */
  async check(request: { method: string; params?: JsonObject }, principal: Principal): Promise<boolean> {
    const raw = signatureMeta(request.params);
    if (raw === undefined) return false;
    const sig = signatureOf(raw);
    const payload = requestPayload(request.method, request.params, sig.nonce, sig.time);
    await this.verifySignature(sig.jws, payload, principal);
    const now = this.deps.now();
    if (Math.abs(now - sig.time) > this.deps.maxSkewMs)
      throw refused('ERR_REQUEST_SIGNATURE_STALE', 'time outside the skew', { skewMs: now - sig.time });
    const fresh = await this.deps.nonces.insert({
      kind: 'nonce',
      id: `request:${createHash('sha256').update(principal.id).digest('hex')}:${sig.nonce}`,
      status: 'used',
      matchKey: 'request-signature',
      createdAt: now,
      // Past this the time check refuses the signature anyway, so the nonce may go.
      expiresAt: sig.time + this.deps.maxSkewMs,
      body: {},
    });
    if (!fresh) throw refused('ERR_REQUEST_SIGNATURE_REPLAYED', 'nonce already used');
    return true;
  }

  private async verifySignature(jws: string, payload: Buffer, principal: Principal): Promise<void> {
    const parts = splitDetached(jws);
    if (!parts) throw refused('ERR_REQUEST_SIGNATURE_INVALID', 'not a detached compact JWS');
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader({ protected: parts.protected });
    } catch {
      throw refused('ERR_REQUEST_SIGNATURE_INVALID', 'unreadable protected header');
    }
    if (header.typ !== REQUEST_TYP || header.b64 !== false || typeof header.alg !== 'string')
      throw refused('ERR_REQUEST_SIGNATURE_INVALID', 'wrong protected header');
    const keys = boundKeys(principal, this.deps.registered).filter((k) => fits(k, header.alg!, header.kid));
    if (keys.length === 0) throw refused('ERR_REQUEST_SIGNATURE_INVALID', 'no key bound to the caller fits');
    for (const jwk of keys) {
      const key = this.importKey(jwk);
      if (!key) continue;
      const ok = await flattenedVerify(
        { protected: parts.protected, payload, signature: parts.signature },
        key,
        { algorithms: ASYMMETRIC_ALGORITHMS },
      ).then(
        () => true,
        () => false,
      );
      if (ok) return;
    }
    throw refused('ERR_REQUEST_SIGNATURE_INVALID', 'the signature does not verify');
  }

  private importKey(jwk: JsonObject): KeyObject | undefined {
    const id = JSON.stringify(jwk);
    let key = this.imported.get(id);
    if (!key) {
      try {
        key = createPublicKey({ key: jwk as never, format: 'jwk' });
      } catch {
        return undefined;
      }
      if (this.imported.size >= MAX_IMPORTED) this.imported.clear();
      this.imported.set(id, key);
    }
    return key;
  }
}

/** What the request carries under `_meta["io.portcullis/signature"]`, if anything. */
export function signatureMeta(params: JsonObject | undefined): unknown {
  return isObject(params?._meta) ? params._meta[SIGNATURE_META_KEY] : undefined;
}

function signatureOf(raw: unknown): RequestSignature {
  if (
    !isObject(raw) ||
    typeof raw.jws !== 'string' ||
    typeof raw.nonce !== 'string' ||
    !NONCE.test(raw.nonce) ||
    !Number.isSafeInteger(raw.time)
  )
    throw refused('ERR_REQUEST_SIGNATURE_INVALID', 'malformed signature object');
  return { jws: raw.jws, nonce: raw.nonce, time: raw.time as number };
}

/** The public keys bound to this caller: its token's `cnf.jwk`, and those config registers for it. */
export function boundKeys(p: Principal, registered: readonly RegisteredKey[]): JsonObject[] {
  const keys: JsonObject[] = [];
  const cnf = p.claims.cnf;
  // A confirmation key with a private part is a leaked key, not a binding.
  if (isObject(cnf) && isObject(cnf.jwk) && !('d' in cnf.jwk)) keys.push(cnf.jwk);
  for (const k of registered) {
    if (k.principal !== undefined && k.principal !== p.id) continue;
    if (k.user !== undefined && k.user !== p.user) continue;
    if (k.workload !== undefined && k.workload !== p.workload) continue;
    keys.push({ ...k.jwk });
  }
  return keys;
}

/** A key may verify this header: its type and curve are the algorithm's, its `alg` and `kid` (when set) agree. */
function fits(jwk: JsonObject, alg: string, kid: string | undefined): boolean {
  const spec = Object.hasOwn(ALGORITHMS, alg) ? ALGORITHMS[alg] : undefined;
  if (!spec || spec.kty === 'oct' || jwk.kty !== spec.kty) return false;
  if (spec.crv !== undefined && jwk.crv !== spec.crv) return false;
  if (jwk.alg !== undefined && jwk.alg !== alg) return false;
  return kid === undefined || jwk.kid === undefined || jwk.kid === kid;
}
