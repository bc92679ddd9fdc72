import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DetachedSigner, RESULT_TYP } from '../../src/attest/detached.ts';
import { AttestationKeys } from '../../src/attest/keys.ts';
import { ATTESTATION_META_KEY } from '../../src/attest/result.ts';
import { verifyAttestation } from '../../src/attest/verify.ts';
import { JSONRPC } from '../../src/errors.ts';
import { errorResponse, resultResponse } from '../../src/jsonrpc.ts';
import { attestStage } from '../../src/pipeline/stages/attest.ts';
import { testCallContext } from '../helpers.ts';

const NOW = 1_764_780_000_000;
const keys = () => new AttestationKeys(mkdtempSync(join(tmpdir(), 'pc-attest-stage-')));
/** One key, whatever the time. */
const fixed = (signer: DetachedSigner) => ({ current: () => signer });
const answered = (result: Record<string, unknown>) =>
  testCallContext({ decisionIndex: 4, response: resultResponse(1, result) });

describe('the attest stage', () => {
  it('signs the answered result with the call id, its decision index and the injected time', async () => {
    const k = keys();
    const ctx = answered({ content: [{ type: 'text', text: 'hi' }] });
    attestStage({ signer: fixed(k.signer()), now: () => NOW }).run(ctx);
    const verified = await verifyAttestation(ctx.response, k.jwks());
    assert.deepEqual([verified.callId, verified.index, verified.time], ['c1', 4, NOW]);
    assert.deepEqual(ctx.attestation, { kid: verified.kid, resultHash: verified.resultHash, time: NOW });
  });

  it('withholds a result it cannot sign, with ERR_ATTESTATION_FAILED, instead of sending it unsigned', () => {
    // An X25519 key cannot sign: every signature fails.
    const broken = new DetachedSigner(generateKeyPairSync('x25519').privateKey, 'broken', RESULT_TYP);
    const ctx = answered({ content: [{ type: 'text', text: 'secret answer' }] });
    attestStage({ signer: fixed(broken), now: () => NOW }).run(ctx);
    assert.equal(ctx.error?.code, 'ERR_ATTESTATION_FAILED');
    assert.equal(ctx.response?.result, undefined);
    assert.deepEqual(ctx.response?.error, {
      code: JSONRPC.INTERNAL_ERROR,
      message: 'Result withheld: it could not be signed',
    });
  });

  it('leaves errors, and every result when attest.results is off, as they are', () => {
    const error = testCallContext({
      decisionIndex: 4,
      response: errorResponse(1, { code: -1, message: 'x' }),
    });
    attestStage({ signer: fixed(keys().signer()), now: () => NOW }).run(error);
    assert.equal(error.attestation, undefined);
    const off = answered({ content: [] });
    attestStage({ signer: null, now: () => NOW }).run(off);
    assert.equal(off.response?.result?._meta, undefined);
  });

  it('signs nothing that has no decision record to point at', () => {
    const ctx = testCallContext({ response: resultResponse(1, {}) });
    attestStage({ signer: fixed(keys().signer()), now: () => NOW }).run(ctx);
    assert.equal(
      (ctx.response?.result?._meta as Record<string, unknown> | undefined)?.[ATTESTATION_META_KEY],
      undefined,
    );
  });
});
