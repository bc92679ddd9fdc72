import { createLocalJWKSet, decodeProtectedHeader, flattenedVerify, type JSONWebKeySet } from 'jose';
import { PortcullisError } from '../errors.ts';
import { isObject, type JsonObject } from '../jsonrpc.ts';
import { RESULT_TYP, splitDetached } from './detached.ts';
import { ATTESTATION_META_KEY, type Attestation, resultHashOf, resultPayload } from './result.ts';

/** A result whose attestation verified: what it claims, and the hash it was checked against. */
export interface VerifiedAttestation extends Attestation {
  readonly resultHash: string;
}

type AttestationCode = 'ERR_ATTESTATION_MISSING' | 'ERR_ATTESTATION_INVALID' | 'ERR_ATTESTATION_KEY_UNKNOWN';
const refused = (code: AttestationCode, why: string, cause?: unknown): PortcullisError =>
  new PortcullisError(code, `attestation refused: ${why}`, cause === undefined ? {} : { cause });

/** The result a saved document holds: a JSON-RPC response's `result`, or the document itself. */
export function resultOf(doc: unknown): JsonObject {
  if (!isObject(doc)) throw refused('ERR_ATTESTATION_MISSING', 'not a JSON object');
  if (doc.jsonrpc === '2.0' && !('method' in doc)) {
    if (!isObject(doc.result)) throw refused('ERR_ATTESTATION_MISSING', 'the response carries no result');
    return doc.result;
  }
  return doc;
}

/** The attestation's own fields, each of the type it must be. */
function attestationOf(result: JsonObject): Attestation {
  const meta = isObject(result._meta) ? result._meta : {};
  const a = meta[ATTESTATION_META_KEY];
  if (a === undefined) throw refused('ERR_ATTESTATION_MISSING', `no _meta["${ATTESTATION_META_KEY}"]`);
  if (
    !isObject(a) ||
    typeof a.jws !== 'string' ||
    typeof a.kid !== 'string' ||
    typeof a.callId !== 'string' ||
    !Number.isSafeInteger(a.index) ||
    !Number.isSafeInteger(a.time)
  )
    throw refused('ERR_ATTESTATION_INVALID', 'malformed attestation');
  return { jws: a.jws, kid: a.kid, callId: a.callId, index: a.index as number, time: a.time as number };
}

/**
 * Checks a saved result (or JSON-RPC response) against a JWKS: the detached
 * JWS must verify, with a key of the set, over the payload rebuilt from the
 * result as received and the claims beside it. Any change to either fails.
 */
export async function verifyAttestation(doc: unknown, jwks: JSONWebKeySet): Promise<VerifiedAttestation> {
  const result = resultOf(doc);
  const a = attestationOf(result);
  const parts = splitDetached(a.jws);
  if (!parts) throw refused('ERR_ATTESTATION_INVALID', 'not a detached compact JWS');
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader({ protected: parts.protected });
  } catch (err) {
    throw refused('ERR_ATTESTATION_INVALID', 'unreadable protected header', err);
  }
  if (header.typ !== RESULT_TYP || header.kid !== a.kid || header.b64 !== false)
    throw refused('ERR_ATTESTATION_INVALID', 'the protected header does not match the attestation');
  if (!jwks.keys.some((k) => k.kid === a.kid))
    throw refused('ERR_ATTESTATION_KEY_UNKNOWN', `no key ${a.kid} in the key set`);
  let resultHash: string;
  try {
    resultHash = resultHashOf(result);
  } catch (err) {
    throw refused('ERR_ATTESTATION_INVALID', 'the result is not canonical JSON', err);
  }
  try {
    await flattenedVerify(
      { protected: parts.protected, payload: resultPayload(resultHash, a), signature: parts.signature },
      createLocalJWKSet(jwks),
      { algorithms: ['EdDSA', 'Ed25519'] },
    );
  } catch (err) {
    throw refused('ERR_ATTESTATION_INVALID', 'the signature does not verify', err);
  }
  return { ...a, resultHash };
}
