import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { flattenedVerify, jwtVerify } from 'jose';
import { RESULT_TYP, splitDetached } from '../../src/attest/detached.ts';
import { AttestationKeys } from '../../src/attest/keys.ts';
import { ATTESTATION_META_KEY, attestResult, resultHashOf, resultPayload } from '../../src/attest/result.ts';
import { verifyAttestation } from '../../src/attest/verify.ts';
import { canonicalize } from '../../src/audit/jcs.ts';
import { PortcullisError } from '../../src/errors.ts';
import { GatewayKeyDir } from '../../src/identity/gateway-keys.ts';
import type { JsonObject } from '../../src/jsonrpc.ts';

const keys = () => new AttestationKeys(mkdtempSync(join(tmpdir(), 'pc-attest-keys-')));
const claims = { callId: 'call-1', index: 7, time: 1_764_780_000_000 };
const RESULT = { content: [{ type: 'text', text: 'héllo, wörld ☃' }], isError: false };

async function failsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof PortcullisError && err.code === code);
}

describe('result attestation', () => {
  it('signs a result that verifies against the published key set', async () => {
    const k = keys();
    const { result, summary } = attestResult(k.signer(), RESULT, claims);
    const verified = await verifyAttestation(result, k.jwks());
    assert.equal(verified.callId, 'call-1');
    assert.equal(verified.index, 7);
    assert.equal(verified.time, claims.time);
    assert.equal(verified.kid, summary.kid);
    assert.equal(verified.resultHash, summary.resultHash);
    assert.equal(summary.resultHash, resultHashOf(RESULT));
  });

  it('verifies a saved JSON-RPC response as well as a bare result', async () => {
    const k = keys();
    const { result } = attestResult(k.signer(), RESULT, claims);
    const saved = JSON.parse(JSON.stringify({ jsonrpc: '2.0', id: 3, result }));
    assert.equal((await verifyAttestation(saved, k.jwks())).callId, 'call-1');
  });

  it('is a standard detached JWS with an unencoded payload that jose verifies', async () => {
    const k = keys();
    const { result, summary } = attestResult(k.signer(), RESULT, claims);
    const att = (result._meta as Record<string, { jws: string }>)[ATTESTATION_META_KEY]!;
    const parts = splitDetached(att.jws)!;
    const jwk = k.jwks().keys[0]!;
    const { protectedHeader } = await flattenedVerify(
      { ...parts, payload: resultPayload(summary.resultHash, claims) },
      await import('jose').then((j) => j.importJWK(jwk, 'EdDSA')),
    );
    assert.deepEqual(protectedHeader, {
      alg: 'EdDSA',
      kid: summary.kid,
      typ: RESULT_TYP,
      b64: false,
      crit: ['b64'],
    });
  });

  it('cannot pass for a JWT: jose refuses the unencoded payload re-attached as a token', async () => {
    const k = keys();
    const { result, summary } = attestResult(k.signer(), RESULT, claims);
    const att = (result._meta as Record<string, { jws: string }>)[ATTESTATION_META_KEY]!;
    const parts = splitDetached(att.jws)!;
    const token = `${parts.protected}.${resultPayload(summary.resultHash, claims).toString('base64url')}.${parts.signature}`;
    const key = await import('jose').then((j) => j.importJWK(k.jwks().keys[0]!, 'EdDSA'));
    await assert.rejects(jwtVerify(token, key));
  });

  it('fails when one byte of the result changes', async () => {
    const k = keys();
    const { result } = attestResult(k.signer(), RESULT, claims);
    const text = JSON.stringify(result).replace('héllo', 'hèllo');
    await failsWith(verifyAttestation(JSON.parse(text), k.jwks()), 'ERR_ATTESTATION_INVALID');
  });

  it('fails when a claim beside the signature changes: call id, index or time', async () => {
    const k = keys();
    const { result } = attestResult(k.signer(), RESULT, claims);
    for (const change of [{ callId: 'call-2' }, { index: 8 }, { time: claims.time + 1 }]) {
      const copy = structuredClone(result) as { _meta: Record<string, Record<string, unknown>> };
      Object.assign(copy._meta[ATTESTATION_META_KEY]!, change);
      await failsWith(verifyAttestation(copy, k.jwks()), 'ERR_ATTESTATION_INVALID');
    }
  });

  it('fails with the wrong key: another key under the same kid, or a kid the set does not hold', async () => {
    const k = keys();
    const { result } = attestResult(k.signer(), RESULT, claims);
    const other = keys();
    other.signer();
    const kid = k.jwks().keys[0]!.kid as string;
    const impostor = { keys: other.jwks().keys.map((j) => ({ ...j, kid })) };
    await failsWith(verifyAttestation(result, impostor), 'ERR_ATTESTATION_INVALID');
    await failsWith(verifyAttestation(result, other.jwks()), 'ERR_ATTESTATION_KEY_UNKNOWN');
  });

  it('replaces an attestation the upstream forged instead of keeping it', async () => {
    const k = keys();
    const forged = { ...RESULT, _meta: { [ATTESTATION_META_KEY]: { jws: 'x..y', kid: 'evil' }, other: 1 } };
    const { result } = attestResult(k.signer(), forged, claims);
    const meta = result._meta as Record<string, unknown>;
    assert.equal(meta.other, 1);
    assert.notEqual((meta[ATTESTATION_META_KEY] as { kid: string }).kid, 'evil');
    await verifyAttestation(result, k.jwks());
  });

  it('covers a result whose own _meta was empty, and keeps the rest of _meta signed', async () => {
    const k = keys();
    const { result: a } = attestResult(k.signer(), { ...RESULT, _meta: {} }, claims);
    await verifyAttestation(a, k.jwks());
    const { result: b } = attestResult(k.signer(), { ...RESULT, _meta: { trace: 'abc' } }, claims);
    const changed = structuredClone(b) as { _meta: Record<string, unknown> };
    changed._meta.trace = 'abd';
    await failsWith(verifyAttestation(changed, k.jwks()), 'ERR_ATTESTATION_INVALID');
  });

  it('still verifies once an SDK dropped resultType "complete", and covers any other resultType', async () => {
    const k = keys();
    const { result } = attestResult(k.signer(), { ...RESULT, resultType: 'complete' }, claims);
    const { resultType: _, ...parsed } = result;
    await verifyAttestation(parsed, k.jwks());
    const { result: input } = attestResult(k.signer(), { ...RESULT, resultType: 'input_required' }, claims);
    await failsWith(
      verifyAttestation({ ...input, resultType: 'complete' }, k.jwks()),
      'ERR_ATTESTATION_INVALID',
    );
  });

  it('hashes the result as sent exactly as a canonical hash of the whole signed result does', () => {
    const k = keys();
    const tools = Array.from({ length: 50 }, (_, i) => ({ name: `t${i}`, description: `Tool ${i}.` }));
    for (const upstream of [
      RESULT,
      { tools },
      { tools, resultType: 'complete' },
      { tools, resultType: 'partial', _meta: { 'x.y/z': [1, 'two'] } },
      { tools, _meta: { [ATTESTATION_META_KEY]: { jws: 'forged' } } },
      { tools, nextCursor: undefined, isError: false },
    ]) {
      const { result, sentHash } = attestResult(k.signer(), upstream as JsonObject, claims);
      const whole = createHash('sha256').update(canonicalize(result)).digest('hex');
      assert.equal(sentHash, whole, JSON.stringify(Object.keys(upstream)));
    }
  });

  it('refuses a document without an attestation, and an error response', async () => {
    const k = keys();
    await failsWith(verifyAttestation(RESULT, k.jwks()), 'ERR_ATTESTATION_MISSING');
    await failsWith(
      verifyAttestation({ jsonrpc: '2.0', id: 1, error: { code: -1, message: 'x' } }, k.jwks()),
      'ERR_ATTESTATION_MISSING',
    );
  });

  it('withholds rather than signs what is not canonical JSON (a lone surrogate)', () => {
    const k = keys();
    assert.throws(
      () => attestResult(k.signer(), { content: [{ type: 'text', text: '\ud800' }] }, claims),
      (err: unknown) => err instanceof PortcullisError && err.code === 'ERR_ATTESTATION_FAILED',
    );
  });

  it('publishes retired keys too, so a result signed before a rotation stays verifiable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-attest-keys-'));
    const { result } = attestResult(new AttestationKeys(dir).signer(), RESULT, claims);
    const rotated = new GatewayKeyDir(dir).rotate(0);
    const later = new AttestationKeys(dir);
    assert.equal(later.signer().kid, rotated.kid);
    assert.equal(later.jwks().keys.length, 2);
    await verifyAttestation(result, later.jwks());
  });
});
