#!/usr/bin/env node
/**
 * Bearer token cost, the way the gateway pays it (src/identity/authenticator.ts):
 * a token seen for the first time is verified (signature, header rules, claims)
 * against pre-imported keys; a token seen again is a cache hit (hash lookup,
 * expiry). ES256 and EdDSA.
 *
 *   node bench/jwt-bench.ts            JWT_BENCH_TOKENS=5000 node bench/jwt-bench.ts
 */
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { Authenticator } from '../src/identity/authenticator.ts';
import { KeyCache } from '../src/identity/key-cache.ts';

const TOKENS = Number(process.env.JWT_BENCH_TOKENS ?? 3000);
const HITS = Number(process.env.JWT_BENCH_HITS ?? 100_000);
const ISSUER = 'https://issuer.bench.example';
const RESOURCE = 'https://gateway.bench.example/mcp';
const silent = { debug() {}, info() {}, warn() {}, error() {} };

type Alg = 'ES256' | 'EdDSA';
interface AlgSpec {
  keys: () => { privateKey: KeyObject; publicKey: KeyObject };
  sign: (key: KeyObject, data: Buffer) => Buffer;
}

const ALGS: Record<Alg, AlgSpec> = {
  ES256: {
    keys: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }),
    sign: (k, d) => sign('sha256', d, { key: k, dsaEncoding: 'ieee-p1363' }),
  },
  EdDSA: { keys: () => generateKeyPairSync('ed25519'), sign: (k, d) => sign(null, d, k) },
};

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

function setup(alg: Alg) {
  const spec = ALGS[alg];
  const { privateKey, publicKey } = spec.keys();
  const kid = `k-${alg}`;
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
  const keys = new KeyCache(
    { load: async () => ({ jwks: { keys: [jwk] }, maxAge: 3600 }) },
    {
      maxAgeSeconds: 3600,
      refetchCooldownSeconds: 30,
      allowSymmetric: false,
      now: Date.now,
      log: silent,
      label: ISSUER,
    },
  );
  const auth = new Authenticator({
    resource: RESOURCE,
    issuers: [{ issuer: ISSUER, keys, algorithms: [alg], requiredScopes: [], workloadClaim: 'client_id' }],
    requiredScopes: [],
    toleranceSeconds: 30,
    now: Date.now,
    log: silent,
    maxCached: TOKENS + 10,
  });
  const now = Math.floor(Date.now() / 1000);
  const mint = (i: number) => {
    const input = `${b64({ alg, typ: 'at+jwt', kid })}.${b64({ iss: ISSUER, aud: RESOURCE, sub: `user-${i}`, client_id: 'agent', scope: 'tools:read', iat: now, exp: now + 3600, jti: `j${i}` })}`;
    return `${input}.${spec.sign(privateKey, Buffer.from(input)).toString('base64url')}`;
  };
  return { auth, tokens: Array.from({ length: TOKENS }, (_, i) => `Bearer ${mint(i)}`) };
}

const pct = (sorted: Float64Array, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

const results = [];
for (const alg of Object.keys(ALGS) as Alg[]) {
  const { auth, tokens } = setup(alg);
  await auth.authenticate(tokens[0]); // keys fetched and imported once, JIT warmed a little
  const lat = new Float64Array(TOKENS - 1);
  let t0 = performance.now();
  for (let i = 1; i < TOKENS; i++) {
    const s = performance.now();
    await auth.authenticate(tokens[i]);
    lat[i - 1] = performance.now() - s;
  }
  const verifyMs = performance.now() - t0;
  lat.sort();
  t0 = performance.now();
  for (let i = 0; i < HITS; i++) await auth.authenticate(tokens[i % TOKENS]);
  const hitMs = performance.now() - t0;
  results.push({
    bench: 'jwt',
    alg,
    verifyPerSec: Math.round(((TOKENS - 1) * 1000) / verifyMs),
    verifyP50Us: Math.round(pct(lat, 50) * 1000),
    verifyP99Us: Math.round(pct(lat, 99) * 1000),
    cachedPerSec: Math.round((HITS * 1000) / hitMs),
    cachedUs: Math.round(((hitMs * 1000) / HITS) * 10) / 10,
  });
}

console.log('bearer JWT (src/identity/authenticator.ts): first sight = full verification; again = cache hit');
console.log('alg    verifications/s  p50 µs  p99 µs  cache hits/s  µs/hit');
for (const r of results) {
  console.log(
    `${r.alg.padEnd(5)}  ${String(r.verifyPerSec).padStart(15)}  ${String(r.verifyP50Us).padStart(6)}  ${String(r.verifyP99Us).padStart(6)}  ${String(r.cachedPerSec).padStart(12)}  ${String(r.cachedUs).padStart(6)}`,
  );
  console.log(JSON.stringify(r));
}
// The hash of the token is what the cache is keyed on: say what one costs here, for scale.
const t = performance.now();
for (let i = 0; i < 100_000; i++) createHash('sha256').update(`token-${i}`).digest('base64url');
console.log(`(one SHA-256 of a short token: ${(((performance.now() - t) * 1000) / 100_000).toFixed(2)} µs)`);
