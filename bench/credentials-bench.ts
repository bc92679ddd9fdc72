#!/usr/bin/env node
/**
 * What a per-call credential costs (src/credentials/): minting and signing a
 * JWT for one call, with the RFC 8785 hash of its arguments (the issue's
 * budget: 100 µs of CPU together); the same token signed by jose's SignJWT,
 * for the choice made in minted-jwt.ts; and a whole broker issue, as shipped
 * (the lease goes to the audit journal only, here in memory: the append is
 * the audit bench's figure) and as it would cost with the lease also
 * inserted into a SQLite state store (what recallable credentials pay).
 *
 *   node bench/credentials-bench.ts         CREDENTIALS_BENCH_CALLS=20000 node bench/credentials-bench.ts
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { CredentialBroker } from '../src/credentials/broker.ts';
import { MintedJwtBackend } from '../src/credentials/minted-jwt.ts';
import { credentialRequest } from '../src/credentials/request.ts';
import type { CredentialBackend } from '../src/credentials/types.ts';
import { ANONYMOUS } from '../src/identity/principal.ts';
import { SqliteRecordStore } from '../src/state/records-sqlite.ts';

const CALLS = Number(process.env.CREDENTIALS_BENCH_CALLS ?? 5000);
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const { privateKey } = generateKeyPairSync('ed25519');
const principal = {
  ...ANONYMOUS,
  id: 'jwt:https://issuer.example|agent|alice',
  user: 'alice',
  authMethod: 'jwt' as const,
};
const args = { query: 'SELECT name FROM customers WHERE region = $1', params: ['eu-west-1'], limit: 50 };

const backend = new MintedJwtBackend({
  upstream: 'db',
  issuer: 'https://gateway.example',
  actor: 'https://gateway.example',
  audience: 'https://db.example',
  ttlSeconds: 30,
  header: 'authorization',
  keys: { signingKey: () => ({ kid: 'k1', key: privateKey }) },
  now: Date.now,
});
const request = (i: number) =>
  credentialRequest({
    callId: `c${i}`,
    principal,
    sessionKey: 's1',
    upstream: 'db',
    method: 'tools/call',
    tool: 'query',
    params: { name: 'query', arguments: args },
  });

/** CPU µs per call (user + system) and wall µs per call, after a warm-up of a tenth. */
async function measure(label: string, fn: (i: number) => unknown): Promise<Record<string, unknown>> {
  for (let i = 0; i < CALLS / 10; i++) await fn(i);
  const wall = performance.now();
  const cpu = process.cpuUsage();
  for (let i = 0; i < CALLS; i++) await fn(i);
  const used = process.cpuUsage(cpu);
  const wallUs = ((performance.now() - wall) * 1000) / CALLS;
  const cpuUs = (used.user + used.system) / CALLS;
  return {
    bench: 'credentials',
    what: label,
    calls: CALLS,
    cpuUsPerCall: round(cpuUs),
    wallUsPerCall: round(wallUs),
  };
}
const round = (n: number) => Math.round(n * 10) / 10;

const results = [];
results.push(
  await measure('mint+sign (node:crypto, as shipped), args hash included', (i) =>
    backend.mint(request(i), `lse_${i}`),
  ),
);
results.push(
  await measure('mint+sign (jose SignJWT), args hash included', async (i) => {
    const req = request(i);
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      act: { sub: 'https://gateway.example' },
      scope: 'db:query',
      args_sha256: req.argsHash,
    })
      .setProtectedHeader({ alg: 'EdDSA', kid: 'k1', typ: 'JWT' })
      .setIssuer('https://gateway.example')
      .setSubject(req.subject)
      .setAudience('https://db.example')
      .setIssuedAt(now)
      .setExpirationTime(now + 30)
      .setJti(`lse_${i}`)
      .sign(privateKey);
  }),
);
const dir = mkdtempSync(join(tmpdir(), 'credentials-bench-'));
const store = new SqliteRecordStore(join(dir, 'state.db'));
const journal = async () => 0;
const broker = new CredentialBroker({
  store,
  backends: new Map([['db', backend]]),
  journal,
  log: silent,
  now: Date.now,
});
results.push(
  await measure('broker issue, as shipped: mint+sign, lease to the audit journal', (i) =>
    broker.credentialFor(request(i)),
  ),
);
// The same tokens treated as recallable: each lease also inserted into the state store before use.
const stored: CredentialBackend = {
  kind: backend.kind,
  granularity: backend.granularity,
  issue: backend.issue.bind(backend),
  revoke: backend.revoke.bind(backend),
};
const storing = new CredentialBroker({
  store,
  backends: new Map([['db', stored]]),
  journal,
  log: silent,
  now: Date.now,
});
results.push(
  await measure('broker issue if stored: + lease insert (SQLite WAL)', (i) =>
    storing.credentialFor(request(i)),
  ),
);
await storing.close();
await broker.close();
await store.close();
rmSync(dir, { recursive: true, force: true });

console.log('per-call credentials (src/credentials/): CPU and wall µs per call');
console.log(`${'what'.padEnd(64)}  CPU µs   wall µs`);
for (const r of results) {
  console.log(
    `${String(r.what).padEnd(64)} ${String(r.cpuUsPerCall).padStart(7)}  ${String(r.wallUsPerCall).padStart(8)}`,
  );
  console.log(JSON.stringify(r));
}
