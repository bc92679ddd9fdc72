import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { AuditLog } from '../../src/audit/log.ts';
import { generateSignerKey } from '../../src/audit/note.ts';
import { type AuditSetup, auditSigner, openAudit, openAuditStore } from '../../src/audit/open.ts';
import type { AuditStore } from '../../src/audit/store.ts';
import { SqliteAuditStore } from '../../src/audit/store-sqlite.ts';
import { verifyLog } from '../../src/audit/verify.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { PG_URL } from '../helpers.ts';
import { auditFixture, dropPgTables, item, itemOf, record, type StoreKind } from './helpers.ts';

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
