import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { stringify } from 'yaml';
import { auditSchema } from '../../src/audit/config.ts';
import { canonicalize } from '../../src/audit/jcs.ts';
import { AuditLog, type AuditLogOptions } from '../../src/audit/log.ts';
import { metaOfRecord } from '../../src/audit/meta.ts';
import { generateSignerKey } from '../../src/audit/note.ts';
import { type AuditSetup, auditSigner, openAuditStore } from '../../src/audit/open.ts';
import type { AppendItem, AuditStore, EntryMeta } from '../../src/audit/store.ts';
import { SqliteAuditStore } from '../../src/audit/store-sqlite.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { PG_URL, probeUpstream } from '../helpers.ts';

export const ORIGIN = 'test.portcullis/audit';

export type StoreKind = 'sqlite' | 'postgres';

/** A fresh audit section (its own SQLite file or PostgreSQL tables) with keys in files, and a config file using it. */
export function auditFixture(kind: StoreKind, extra: Record<string, unknown> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-audit-test-'));
  writeFileSync(join(dir, 'signing.key'), `${generateSignerKey(ORIGIN)}\n`);
  writeFileSync(join(dir, 'hmac.key'), `${randomBytes(32).toString('base64')}\n`);
  const table = `audit_t_${process.pid}_${randomBytes(4).toString('hex')}`;
  const raw = {
    store: kind,
    path: join(dir, 'audit.db'),
    ...(kind === 'postgres' ? { url: PG_URL, table } : {}),
    origin: ORIGIN,
    signingKey: `file:${join(dir, 'signing.key')}`,
    hmacKey: `file:${join(dir, 'hmac.key')}`,
    ...extra,
  };
  const setup: AuditSetup = { config: auditSchema.parse(raw), baseDir: dir };
  const configPath = join(dir, 'portcullis.yaml');
  writeFileSync(configPath, stringify({ upstreams: { probe: probeUpstream() }, audit: raw }));
  return { dir, setup, raw, table, configPath };
}

/** A decision record numbered `n` (its `n` field), with the columns stored beside it taken from it as the gateway does. */
export function item(n: number, extra: Partial<Omit<EntryMeta, 'kind'>> = {}): AppendItem {
  return itemOf(record(n, extra));
}

/** The decision record `item` writes, as an object, for tests that forge or change one. */
export function record(n: number, extra: Partial<Omit<EntryMeta, 'kind'>> = {}): Record<string, unknown> {
  const m = {
    callId: `call-${n}`,
    principal: 'p',
    tool: 't',
    decision: 'none',
    session: 's',
    time: n,
    ...extra,
  };
  return {
    v: 1,
    type: 'decision',
    n,
    callId: m.callId,
    principal: { id: m.principal, authMethod: 'none' },
    tool: m.tool,
    session: m.session,
    time: m.time,
    decision: m.decision === 'none' ? 'none' : { effect: m.decision },
  };
}

export function itemOf(r: Record<string, unknown>): AppendItem {
  return { leaf: Buffer.from(canonicalize(r)), meta: metaOfRecord(r)!, blobs: [] };
}

/** SQL as an attacker with direct database access: the append-only triggers are bypassed first. */
export async function attack(kind: StoreKind, setup: AuditSetup, statements: string[]): Promise<void> {
  if (kind === 'postgres') {
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      await client.query('SET session_replication_role = replica');
      for (const s of statements) await client.query(s);
    } finally {
      await client.end();
    }
    return;
  }
  const store = new SqliteAuditStore(setup.config.path);
  try {
    for (const trig of store.db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'").all()) {
      store.db.exec(`DROP TRIGGER ${(trig as { name: string }).name}`);
    }
    for (const s of statements) store.db.exec(s);
  } finally {
    await store.close();
  }
}

/** The name of one of the store's tables (`entries`, `checkpoints`, …) in SQL. */
export const tableOf = (kind: StoreKind, setup: AuditSetup, name: string): string =>
  kind === 'postgres' ? `${setup.config.table}_${name}` : `audit_${name}`;

/** A byte string as an SQL literal of the store's dialect. */
export const bytesLiteral = (kind: StoreKind, data: Buffer): string =>
  kind === 'postgres' ? `'\\x${data.toString('hex')}'::bytea` : `X'${data.toString('hex')}'`;

/** Drops the PostgreSQL tables this test process created. */
export async function dropPgTables(): Promise<void> {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 1 });
  try {
    const { rows } = await pool.query('SELECT tablename FROM pg_tables WHERE tablename LIKE $1', [
      `audit\\_t\\_${process.pid}\\_%`,
    ]);
    for (const { tablename } of rows) await pool.query(`DROP TABLE IF EXISTS ${tablename} CASCADE`);
    const fns = await pool.query('SELECT proname FROM pg_proc WHERE proname LIKE $1', [
      `audit\\_t\\_${process.pid}\\_%`,
    ]);
    for (const { proname } of fns.rows) await pool.query(`DROP FUNCTION IF EXISTS ${proname} CASCADE`);
  } finally {
    await pool.end();
  }
}

/** The setup's store and an audit log writing to it with the setup's signer; `opts` override the defaults. */
export async function openTestLog(
  setup: AuditSetup,
  opts: Partial<AuditLogOptions> = {},
  wrap: (store: AuditStore) => AuditStore = (store) => store,
) {
  const store = wrap(await openAuditStore(setup, { commitSync: 'deferred' }));
  const signer = auditSigner(setup, silentLogger);
  const log = new AuditLog(store, {
    signer,
    origin: signer.name,
    checkpointEveryEntries: 1_000,
    checkpointEveryMs: 60_000,
    groupCommit: true,
    maxBatch: 64,
    log: silentLogger,
    ...opts,
  });
  return { store, log };
}

/** The refusal-count records of the SQLite audit log at `path`, read back as JSON. */
export async function refusalRecords(path: string, baseDir: string): Promise<Record<string, unknown>[]> {
  const store = await openAuditStore({ config: auditSchema.parse({ path }), baseDir });
  try {
    const head = await store.head();
    const all = (await store.entries(0, head.size)).map((e) => JSON.parse(e.leaf.toString()));
    return all.filter((r) => r.type === 'refusals');
  } finally {
    await store.close();
  }
}
