import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { AuditLog } from '../../src/audit/log.ts';
import { CompactRange, leafHash } from '../../src/audit/merkle.ts';
import { generateSignerKey } from '../../src/audit/note.ts';
import { type AuditSetup, auditSigner, openAudit, openAuditStore } from '../../src/audit/open.ts';
import type { AuditStore } from '../../src/audit/store.ts';
import { encodeRange } from '../../src/audit/store.ts';
import { SqliteAuditStore } from '../../src/audit/store-sqlite.ts';
import { verifyLog } from '../../src/audit/verify.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { PG_URL } from '../helpers.ts';
import {
  attack,
  auditFixture,
  bytesLiteral,
  dropPgTables,
  item,
  itemOf,
  record,
  type StoreKind,
} from './helpers.ts';

const pgAdmin = new pg.Pool({ connectionString: PG_URL, max: 2 });
after(async () => {
  await pgAdmin.end();
  await dropPgTables();
});

function logOf(store: AuditStore, setup: AuditSetup, groupCommit = true): AuditLog {
  const signer = auditSigner(setup, silentLogger);
  return new AuditLog(store, {
    signer,
    origin: signer.name,
    checkpointEveryEntries: 8,
    checkpointEveryMs: 60_000,
    groupCommit,
    maxBatch: 64,
    log: silentLogger,
  });
}

/** The store, with every leaf and entry it hands out counted: what a reader of it read. */
function counting(store: AuditStore): { store: AuditStore; reads: { from: number; rows: number }[] } {
  const reads: { from: number; rows: number }[] = [];
  const read =
    (name: 'leaves' | 'entries' | 'entriesFrom') =>
    async (from: number, to: number): Promise<unknown[]> => {
      const rows = await store[name](from, to);
      reads.push({ from, rows: rows.length });
      return rows;
    };
  const wrapped = new Proxy(store, {
    get(target, key) {
      if (key === 'leaves' || key === 'entries' || key === 'entriesFrom') return read(key);
      const value = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: wrapped, reads };
}

/** A log of `size` entries whose last checkpoint is at `signedAt`: the rest were appended after it. */
async function logWithTail(setup: AuditSetup, signedAt: number, size: number): Promise<void> {
  const store = await openAuditStore(setup);
  const log = logOf(store, setup);
  for (let n = 0; n < signedAt; n++) await log.append(item(n));
  await log.close();
  if (size === signedAt) return;
  const tail = await openAuditStore(setup);
  await tail.append(Array.from({ length: size - signedAt }, (_, i) => item(signedAt + i)));
  await tail.close();
}

/** Runs SQL as someone with direct access to the database, bypassing the application. */
async function raw(kind: StoreKind, setup: AuditSetup, sql: string): Promise<void> {
  if (kind === 'postgres') {
    await pgAdmin.query(sql);
    return;
  }
  const store = new SqliteAuditStore(setup.config.path);
  try {
    store.db.exec(sql);
  } finally {
    await store.close();
  }
}

for (const kind of ['sqlite', 'postgres'] as const) {
  const t = (setup: AuditSetup, name: string): string =>
    kind === 'postgres' ? `${setup.config.table}_${name}` : `audit_${name}`;

  describe(`the ${kind} audit store`, () => {
    it('gives concurrent appends gapless indices in one tree and checkpoints it', async () => {
      const { setup } = auditFixture(kind);
      const store = await openAuditStore(setup);
      const log = logOf(store, setup);
      const indices = await Promise.all(Array.from({ length: 40 }, (_, n) => log.append(item(n))));
      assert.deepEqual(
        [...indices].sort((a, b) => a - b),
        Array.from({ length: 40 }, (_, i) => i),
      );
      await log.checkpoint();
      assert.equal((await store.checkpoints()).at(-1)?.size, 40);
      const result = await verifyLog(store, auditSigner(setup, silentLogger));
      assert.deepEqual(result, {
        ok: true,
        size: 40,
        checkpoints: (await store.checkpoints()).length,
        signedSize: 40,
        anchored: false,
      });
      await log.close();
    });

    it('hands back the leaves of a range in index order, as its entries carry them', async () => {
      const { setup } = auditFixture(kind);
      const store = await openAuditStore(setup);
      const log = logOf(store, setup);
      for (let n = 0; n < 6; n++) await log.append(item(n));
      const leaves = await store.leaves(2, 5);
      const entries = await store.entries(2, 5);
      assert.deepEqual(
        leaves.map((l) => l.index),
        [2, 3, 4],
      );
      assert.deepEqual(
        leaves.map((l) => l.leaf),
        entries.map((e) => e.leaf),
      );
      assert.deepEqual(await store.leaves(6, 9), []);
      await log.close();
    });

    it('keeps one sequence when two writers append to the same log', async () => {
      const { setup } = auditFixture(kind);
      const a = await openAuditStore(setup);
      const b = await openAuditStore(setup);
      const [la, lb] = [logOf(a, setup), logOf(b, setup)];
      await Promise.all(Array.from({ length: 30 }, (_, n) => (n % 2 ? la : lb).append(item(n))));
      await la.checkpoint();
      const result = await verifyLog(a, auditSigner(setup, silentLogger));
      assert.equal(result.ok && result.size, 30);
      await la.close();
      await lb.close();
    });

    it('refuses UPDATE and DELETE of entries in the database itself', async () => {
      const { setup } = auditFixture(kind);
      const store = await openAuditStore(setup);
      const log = logOf(store, setup);
      await log.append(item(1));
      await log.close();
      await assert.rejects(raw(kind, setup, `UPDATE ${t(setup, 'entries')} SET tool = 'x'`), /append-only/);
      await assert.rejects(raw(kind, setup, `DELETE FROM ${t(setup, 'entries')}`), /append-only/);
      await assert.rejects(raw(kind, setup, `UPDATE ${t(setup, 'head')} SET size = 0`), /append-only/);
      await assert.rejects(raw(kind, setup, `DELETE FROM ${t(setup, 'checkpoints')}`), /append-only/);
    });

    it('refuses to reopen a log with another signing key or another origin', async () => {
      const f = auditFixture(kind);
      const first = await openAudit(f.setup, silentLogger);
      await first.log.append(item(1));
      await first.log.close();
      writeFileSync(join(f.dir, 'signing.key'), generateSignerKey('test.portcullis/audit'));
      await assert.rejects(openAudit(f.setup, silentLogger), { code: 'ERR_AUDIT_SIGNATURE_INVALID' });
      writeFileSync(join(f.dir, 'signing.key'), generateSignerKey('elsewhere.example/log'));
      const moved = { ...f.setup, config: { ...f.setup.config, origin: 'elsewhere.example/log' } };
      await assert.rejects(openAudit(moved, silentLogger), { code: 'ERR_AUDIT_SIGNATURE_INVALID' });
    });

    it('catches a payload stored beside the log that was changed', async () => {
      const f = auditFixture(kind);
      const store = await openAuditStore(f.setup);
      const log = logOf(store, f.setup);
      const data = Buffer.from('{"big":"payload"}');
      const hash = createHash('sha256').update(data).digest('hex');
      await log.append({ ...itemOf({ ...record(1), args: { blob: hash } }), blobs: [{ hash, data }] });
      await log.checkpoint();
      assert.equal((await verifyLog(store, auditSigner(f.setup, silentLogger))).ok, true);
      await log.close();
      const blobs = kind === 'postgres' ? `${f.setup.config.table}_blobs` : 'audit_blobs';
      if (kind === 'postgres') {
        await pgAdmin.query(`ALTER TABLE ${blobs} DISABLE TRIGGER USER`);
        await pgAdmin.query(`UPDATE ${blobs} SET data = 'x'::bytea`);
      } else {
        await raw(kind, f.setup, `DROP TRIGGER audit_blobs_no_update; UPDATE ${blobs} SET data = X'00'`);
      }
      const again = await openAuditStore(f.setup);
      const result = await verifyLog(again, auditSigner(f.setup, silentLogger));
      await again.close();
      assert.deepEqual(result, {
        ok: false,
        index: 0,
        code: 'payload-changed',
        reason: `payload stored beside the log ${hash} was changed`,
      });
    });

    it('starts from the range stored with the last checkpoint, reading only the entries after it', async () => {
      const f = auditFixture(kind);
      await logWithTail(f.setup, 200, 205);
      const { store, reads } = counting(await openAuditStore(f.setup));
      const log = logOf(store, f.setup);
      await log.init();
      assert.deepEqual(reads, [{ from: 200, rows: 5 }]);
      await log.append(item(205));
      await log.checkpoint();
      assert.equal((await store.latestCheckpoint())?.size, 206);
      await log.close();
    });

    it('refuses to start when the range stored with the last checkpoint does not have its root', async () => {
      const f = auditFixture(kind);
      await logWithTail(f.setup, 12, 12);
      // Another tree of the same size: its range fits the size but not the signed root.
      const other = new CompactRange();
      for (let n = 0; n < 12; n++) other.append(leafHash(Buffer.from(`forged ${n}`)));
      const checkpoints = t(f.setup, 'checkpoints');
      await attack(kind, f.setup, [
        `UPDATE ${checkpoints} SET range = '${encodeRange(other)}' WHERE size = 12`,
      ]);
      await assert.rejects(openAudit(f.setup, silentLogger), { code: 'ERR_AUDIT_INCONSISTENT' });
      await attack(kind, f.setup, [`UPDATE ${checkpoints} SET range = 'not,a,range' WHERE size = 12`]);
      await assert.rejects(openAudit(f.setup, silentLogger), { code: 'ERR_AUDIT_INCONSISTENT' });
    });

    it('opens a log written before checkpoints kept their range, rebuilding the range from the entries', async () => {
      const f = auditFixture(kind);
      await logWithTail(f.setup, 10, 13);
      await attack(kind, f.setup, [`ALTER TABLE ${t(f.setup, 'checkpoints')} DROP COLUMN range`]);
      if (kind === 'sqlite') {
        const old = new SqliteAuditStore(f.setup.config.path, { readOnly: true });
        const note = (await old.checkpoints()).at(-1)?.note;
        assert.deepEqual(await old.latestCheckpoint().finally(() => old.close()), { size: 10, note });
      }
      const { store, reads } = counting(await openAuditStore(f.setup));
      const log = logOf(store, f.setup);
      await log.init();
      assert.deepEqual(reads, [
        { from: 0, rows: 10 },
        { from: 10, rows: 3 },
      ]);
      await log.append(item(13));
      await log.close();
      const reopened = await openAuditStore(f.setup);
      const latest = await reopened.latestCheckpoint();
      assert.equal(latest?.size, 14);
      assert.equal(typeof latest?.range, 'string');
      assert.equal((await verifyLog(reopened, auditSigner(f.setup, silentLogger))).ok, true);
      await reopened.close();
    });

    it('verifies a log a page at a time, and names a changed entry on a later page', async () => {
      const f = auditFixture(kind);
      await logWithTail(f.setup, 40, 43);
      const { store, reads } = counting(await openAuditStore(f.setup));
      const verifier = auditSigner(f.setup, silentLogger);
      assert.deepEqual(await verifyLog(store, verifier, undefined, 8), {
        ok: true,
        size: 43,
        checkpoints: (await store.checkpoints()).length,
        signedSize: 40,
        anchored: false,
      });
      assert.deepEqual(
        reads.map((r) => [r.from, r.rows]),
        [
          [0, 8],
          [8, 8],
          [16, 8],
          [24, 8],
          [32, 8],
          [40, 3],
          [43, 0],
        ],
      );
      await store.close();
      const leaf = Buffer.from(JSON.stringify({ ...record(30), n: 999 }));
      await attack(kind, f.setup, [
        `UPDATE ${t(f.setup, 'entries')} SET leaf = ${bytesLiteral(kind, leaf)} WHERE idx = 30`,
      ]);
      const changed = await openAuditStore(f.setup);
      const result = await verifyLog(changed, verifier, undefined, 8);
      await changed.close();
      assert.equal(result.ok === false && result.code, 'entry-changed');
      assert.equal(result.ok === false && result.index, 30);
    });

    it('stops accepting appends once the stored log no longer extends its last checkpoint', async () => {
      const f = auditFixture(kind);
      const store = await openAuditStore(f.setup);
      const log = logOf(store, f.setup);
      await Promise.all([1, 2, 3].map((n) => log.append(item(n))));
      await log.checkpoint();
      await log.append(item(4));
      // Rewritten after it was appended, before the next checkpoint signs it.
      const entries = t(f.setup, 'entries');
      if (kind === 'postgres') {
        await pgAdmin.query(`ALTER TABLE ${entries} DISABLE TRIGGER USER`);
        await pgAdmin.query(`UPDATE ${entries} SET leaf = 'x'::bytea WHERE idx = 3`);
      } else {
        await raw(
          kind,
          f.setup,
          `DROP TRIGGER audit_entries_no_update; UPDATE ${entries} SET leaf = X'00' WHERE idx = 3`,
        );
      }
      await assert.rejects(log.checkpoint(), { code: 'ERR_AUDIT_INCONSISTENT' });
      await assert.rejects(log.append(item(5)), { code: 'ERR_AUDIT_UNAVAILABLE' });
      await log.close();
    });
  });
}
