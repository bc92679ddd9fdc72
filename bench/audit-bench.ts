#!/usr/bin/env node
/**
 * Audit log micro-benchmark (issue 6): appends per second and the latency the
 * audit adds to one call (its decision record before forwarding plus its outcome
 * record after), for SQLite (WAL, synchronous=FULL) and PostgreSQL, with and without group
 * commit. Every append is durable before it is acknowledged. First it measures
 * this disk's fdatasync: the floor under any durable append.
 *
 *   node bench/audit-bench.ts            AUDIT_BENCH_SECONDS=3 node bench/audit-bench.ts
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { AuditLog } from '../src/audit/log.ts';
import { generateSignerKey, parseSignerKey } from '../src/audit/note.ts';
import type { AppendItem, AuditStore } from '../src/audit/store.ts';
import { PgAuditStore } from '../src/audit/store-pg.ts';
import { SqliteAuditStore } from '../src/audit/store-sqlite.ts';
import type { Logger } from '../src/observability/log.ts';

const SECONDS = Number(process.env.AUDIT_BENCH_SECONDS ?? 2);
const CONCURRENCY = Number(process.env.AUDIT_BENCH_CONCURRENCY ?? 32);
const PG_URL = process.env.AUDIT_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const signer = parseSignerKey(generateSignerKey('bench.portcullis/audit'));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-audit-bench-'));
const tables: string[] = [];

/** A record about the size of a real decision record (~600 bytes). */
const item = (n: number): AppendItem => ({
  leaf: Buffer.from(JSON.stringify({ v: 1, type: 'decision', n, pad: 'x'.repeat(500) })),
  meta: {
    kind: 'decision',
    callId: `c${n}`,
    principal: 'p',
    tool: 'echo',
    decision: 'allow',
    session: 's',
    time: n,
  },
  blobs: [],
});

async function openStore(kind: 'sqlite' | 'postgres'): Promise<AuditStore> {
  const file = () => path.join(dir, `${randomBytes(4).toString('hex')}.db`);
  if (kind === 'sqlite') return new SqliteAuditStore(file());
  const table = `audit_bench_${process.pid}_${randomBytes(3).toString('hex')}`;
  tables.push(table);
  return PgAuditStore.open(PG_URL, table);
}

const logOf = (store: AuditStore, groupCommit: boolean) =>
  new AuditLog(store, {
    signer,
    origin: signer.name,
    checkpointEveryEntries: 1000,
    checkpointEveryMs: 1000,
    groupCommit,
    maxBatch: 512,
    log: silent,
  });

const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

/** `callers` loops, each doing decision + outcome appends per call, for SECONDS. */
async function run(log: AuditLog, callers: number) {
  const latencies: number[] = [];
  let n = 0;
  const end = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (performance.now() < end) {
        const s = performance.now();
        await log.append(item(n++));
        await log.append(item(n++));
        latencies.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    appendsPerSec: Math.round(n / secs),
    callLatencyMs: { p50: pct(latencies, 50), p99: pct(latencies, 99) },
  };
}

const fmt = (x: number) => x.toFixed(2);

/** fdatasync of a small write to a file in the bench dir: what one durable commit cannot beat. */
function fsyncFloor(n = 300) {
  const fd = fs.openSync(path.join(dir, 'fsync-probe'), 'w');
  const buf = Buffer.alloc(600, 'x');
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    fs.writeSync(fd, buf);
    fs.fdatasyncSync(fd);
    times.push((performance.now() - s) * 1000);
  }
  fs.closeSync(fd);
  times.sort((a, b) => a - b);
  return { p50: Math.round(pct(times, 50)), p99: Math.round(pct(times, 99)) };
}

const floor = fsyncFloor();
console.log(
  `disk: write + fdatasync of 600 bytes p50 ${floor.p50} µs, p99 ${floor.p99} µs (the floor of one durable append)`,
);
console.log(JSON.stringify({ bench: 'audit-fsync', us: floor }));
console.log(`audit log: ${SECONDS}s per figure; each call = decision + outcome append, both durable`);
console.log('store          group-commit  callers  appends/s  added ms/call p50   p99');
for (const kind of ['sqlite', 'postgres'] as const) {
  for (const groupCommit of [true, false]) {
    for (const callers of [1, CONCURRENCY]) {
      let store: AuditStore;
      try {
        store = await openStore(kind);
      } catch (err) {
        console.log(`${kind.padEnd(14)} unavailable: ${(err as Error).message}`);
        break;
      }
      const log = logOf(store, groupCommit);
      const r = await run(log, callers);
      await log.close();
      console.log(
        `${kind.padEnd(14)} ${String(groupCommit).padEnd(13)} ${String(callers).padStart(7)}  ${String(r.appendsPerSec).padStart(9)}  ${fmt(r.callLatencyMs.p50).padStart(17)}  ${fmt(r.callLatencyMs.p99).padStart(5)}`,
      );
      console.log(JSON.stringify({ bench: 'audit', store: kind, groupCommit, callers, ...r }));
    }
  }
}

fs.rmSync(dir, { recursive: true, force: true });
if (tables.length > 0) {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 1 });
  for (const t of tables) {
    await pool.query(
      `DROP TABLE IF EXISTS ${t}_entries, ${t}_head, ${t}_checkpoints, ${t}_blobs CASCADE; DROP FUNCTION IF EXISTS ${t}_refuse, ${t}_no_shrink CASCADE`,
    );
  }
  await pool.end();
}
