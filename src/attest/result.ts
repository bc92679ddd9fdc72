import { createHash } from 'node:crypto';
import { canonicalFromMembers, canonicalize, canonicalMembers } from '../audit/jcs.ts';
import { PortcullisError } from '../errors.ts';
import type { JsonObject } from '../jsonrpc.ts';
import { type DetachedSigner, payloadOf, withoutMetaKey } from './detached.ts';

/** Where a signed result carries its attestation. */
export const ATTESTATION_META_KEY = 'io.portcullis/attestation';

/** What an attestation binds a result to, besides its hash. */
export interface AttestationClaims {
  /** The gateway's id of the call (the audit records name it). */
  readonly callId: string;
  /** Index of the call's decision record in the audit log. */
  readonly index: number;
  /** When it was signed, in milliseconds since the epoch. */
  readonly time: number;
}

/** `_meta["io.portcullis/attestation"]`: the detached JWS and the claims a verifier rebuilds its payload from. */
export interface Attestation extends AttestationClaims {
  readonly jws: string;
  readonly kid: string;
}

/** What the outcome record keeps of an attestation. */
export interface AttestationSummary {
  readonly kid: string;
  /** SHA-256 (hex) of the canonical result without its attestation. */
  readonly resultHash: string;
  readonly time: number;
}

/**
 * What a signature covers: the result without its attestation (and without
 * `_meta` when nothing else is in it), and without `resultType` when it is
 * `"complete"`: the 2026-07-28 era's default, which SDK clients drop when they
 * parse a result, so a result saved from one still verifies.
 */
export function signedForm(result: JsonObject): JsonObject {
  const { resultType, ...rest } = withoutMetaKey(result, ATTESTATION_META_KEY);
  return resultType === undefined || resultType === 'complete' ? rest : { ...rest, resultType };
}

/** SHA-256 (hex) of the RFC 8785 canonical signed form of the result. */
export function resultHashOf(result: JsonObject): string {
  return createHash('sha256')
    .update(canonicalize(signedForm(result)), 'utf8')
    .digest('hex');
}

const sha256hex = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/**
 * The canonical text of each member of the result as sent: a member the signed form holds
 * as the very same value (a list's 1,000 tools) keeps the text already made for it, so the
 * outcome record's hash of what was sent does not canonicalise the whole result again.
 */
function sentMembers(sent: JsonObject, form: JsonObject, formMembers: ReadonlyMap<string, string>) {
  const out = new Map<string, string>();
  for (const key of Object.keys(sent)) {
    const v = sent[key];
    if (v === undefined) continue;
    const made = Object.hasOwn(form, key) && form[key] === v ? formMembers.get(key) : undefined;
    out.set(key, made ?? canonicalize(v));
  }
  return out;
}

/** The detached payload: the canonical JSON of the result's hash and the claims. */
export const resultPayload = (resultHash: string, c: AttestationClaims): Buffer =>
  payloadOf({ callId: c.callId, index: c.index, resultHash, time: c.time });

/**
 * The result as it leaves the gateway: signed over what the client receives.
 * An attestation the upstream put there itself is replaced, never kept.
 * Any failure is ERR_ATTESTATION_FAILED: a result is never sent unsigned.
 */
export function attestResult(
  signer: DetachedSigner,
  result: JsonObject,
  claims: AttestationClaims,
): { result: JsonObject; summary: AttestationSummary; sentHash: string } {
  try {
    const form = signedForm(result);
    const members = canonicalMembers(form);
    const resultHash = sha256hex(canonicalFromMembers(members));
    const jws = signer.sign(resultPayload(resultHash, claims));
    const attestation: Attestation = { jws, kid: signer.kid, ...claims };
    const unsigned = withoutMetaKey(result, ATTESTATION_META_KEY);
    const meta = (unsigned._meta as JsonObject | undefined) ?? {};
    const sent: JsonObject = { ...unsigned, _meta: { ...meta, [ATTESTATION_META_KEY]: { ...attestation } } };
    return {
      result: sent,
      summary: { kid: signer.kid, resultHash, time: claims.time },
      sentHash: sha256hex(canonicalFromMembers(sentMembers(sent, form, members))),
    };
  } catch (err) {
    throw new PortcullisError('ERR_ATTESTATION_FAILED', `result not signed: ${String(err)}`, { cause: err });
  }
}
