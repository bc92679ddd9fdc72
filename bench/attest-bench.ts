#!/usr/bin/env node
/**
 * Result attestation and caller-signed requests (issue 16): what the attest
 * stage pays per result (canonical JSON, SHA-256, one Ed25519 signature),
 * node:crypto with the header encoded once against jose's FlattenedSign, on a
 * small result and a 2 KB one; and what verifying costs (jose, the CLI's path)
 * and a signed request's check (jose verify with a cached key, nonce aside).
 *
 *   node bench/attest-bench.ts            ATTEST_BENCH_N=20000 node bench/attest-bench.ts
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlattenedSign } from 'jose';
import { DETACHED, DetachedSigner, RESULT_TYP } from '../src/attest/detached.ts';
import { AttestationKeys } from '../src/attest/keys.ts';
import { attestResult, resultHashOf, resultPayload } from '../src/attest/result.ts';
import { verifyAttestation } from '../src/attest/verify.ts';

const N = Number(process.env.ATTEST_BENCH_N ?? 10_000);
const keys = new AttestationKeys(mkdtempSync(join(tmpdir(), 'pc-attest-bench-')));
const signer = keys.signer();
const jwks = keys.jwks();
const { privateKey } = generateKeyPairSync('ed25519');
const nodeSigner = new DetachedSigner(privateKey, randomUUID(), RESULT_TYP);

const SMALL = { content: [{ type: 'text', text: 'hello' }], resultType: 'complete' };
const LARGE = {
  content: Array.from({ length: 16 }, (_, i) => ({
    type: 'text',
    text: `row ${i}: ${'lorem ipsum '.repeat(10)}`,
  })),
};
const claims = (i: number) => ({ callId: `c-${i}`, index: i, time: 1_764_780_000_000 + i });

const pct = (sorted: Float64Array, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

async function measure(what: string, n: number, fn: (i: number) => unknown) {
  for (let i = 0; i < Math.min(500, n); i++) await fn(i);
  const lat = new Float64Array(n);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await fn(i);
    lat[i] = performance.now() - s;
  }
  const total = performance.now() - t0;
  lat.sort();
  const r = {
    bench: 'attest',
    what,
    perSec: Math.round((n * 1000) / total),
    p50Us: Math.round(pct(lat, 50) * 1000),
    p99Us: Math.round(pct(lat, 99) * 1000),
  };
  console.log(
    `${what.padEnd(52)} ${String(r.perSec).padStart(8)}/s  p50 ${String(r.p50Us).padStart(4)} µs  p99 ${String(r.p99Us).padStart(4)} µs`,
  );
  console.log(JSON.stringify(r));
  return r;
}

const payload = resultPayload(resultHashOf(SMALL), claims(1));
await measure('sign payload: node:crypto, header encoded once', N, () => nodeSigner.sign(payload));
await measure('sign payload: jose FlattenedSign', N, () =>
  new FlattenedSign(payload)
    .setProtectedHeader({ alg: 'EdDSA', kid: 'k', typ: RESULT_TYP, ...DETACHED })
    .sign(privateKey),
);
await measure('attest stage work, small result (hash + sign)', N, (i) =>
  attestResult(signer, SMALL, claims(i)),
);
await measure('attest stage work, 2 KB result (hash + sign)', N, (i) =>
  attestResult(signer, LARGE, claims(i)),
);
const signed = attestResult(signer, SMALL, claims(1)).result;
await measure('verify (jose flattenedVerify, local JWKS)', Math.round(N / 4), () =>
  verifyAttestation(signed, jwks),
);
