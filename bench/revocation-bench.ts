#!/usr/bin/env node
/**
 * What the per-call revocation check costs, for each state store:
 *   node bench/revocation-bench.ts
 * A token holder's every call asks the store whether its token id, user or
 * workload is revoked. Printed per store: CPU µs per check of this process
 * (`process.cpuUsage`, user + system) and wall µs per check, checks run one
 * after another, 100 revocations stored. PostgreSQL and Redis use the
 * machine's test servers (REVOCATION_BENCH_PG, REVOCATION_BENCH_REDIS) and a
 * table / key unique to the run, dropped afterwards. Both answer from the
 * replica's copy kept by their subscribed channel, so this is the lookup; the
 * channel's heartbeat costs a round trip per replica every 250 ms, not per
 * check. The servers' own CPU is not counted.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { PostgresRevocationStore } from '../src/state/postgres.ts';
import { RedisRevocationStore } from '../src/state/redis.ts';
import type { RevocationStore } from '../src/state/revocations.ts';
import { SqliteRevocationStore } from '../src/state/sqlite.ts';

const PG_URL = process.env.REVOCATION_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REVOCATION_BENCH_REDIS ?? 'redis://127.0.0.1:6379';
const run = randomBytes(4).toString('hex');
const subject = { tokenId: 'jti-live', user: 'alice', workload: 'spiffe://example.org/agent' };

async function measure(label: string, store: RevocationStore, n: number): Promise<void> {
  for (let i = 0; i < 100; i++)
    await store.revoke({ kind: 'jti', value: `old-${i}`, revokedAt: Date.now(), reason: 'bench' });
  for (let i = 0; i < Math.min(n, 2000); i++) await store.find(subject);
  const cpu = process.cpuUsage();
  const t = performance.now();
  for (let i = 0; i < n; i++) if (await store.find(subject)) throw new Error('not revoked');
  const wall = ((performance.now() - t) * 1000) / n;
  const used = process.cpuUsage(cpu);
  const cpuPer = (used.user + used.system) / n;
  console.log(`${label}: ${cpuPer.toFixed(2)} µs CPU, ${wall.toFixed(2)} µs wall per check (${n} checks)`);
  console.log(JSON.stringify({ bench: 'revocation-check', store: label, cpuUs: cpuPer, wallUs: wall, n }));
}

const dir = mkdtempSync(join(tmpdir(), 'portcullis-revocation-bench-'));
const sqlite = new SqliteRevocationStore(join(dir, 'state.db'));
const postgres = new PostgresRevocationStore(PG_URL, `rb${run}`);
const redis = new RedisRevocationStore(REDIS_URL, `revocation-bench:${run}:`);
try {
  await measure('sqlite', sqlite, 100_000);
  await measure('postgres', postgres, 200_000);
  await measure('redis', redis, 200_000);
} finally {
  await sqlite.close();
  await postgres.close();
  await redis.close();
  rmSync(dir, { recursive: true, force: true });
  const c = new pg.Client(PG_URL);
  await c.connect();
  await c.query(`DROP TABLE IF EXISTS rb${run}_revocations CASCADE`);
  await c.query(`DROP FUNCTION IF EXISTS rb${run}_revocations_notify() CASCADE`);
  await c.end();
  const r = new Redis(REDIS_URL);
  await r.del(`revocation-bench:${run}:revocations`);
  r.disconnect();
}
