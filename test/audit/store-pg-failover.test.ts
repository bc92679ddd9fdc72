import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import pg from 'pg';
import { CompactRange } from '../../src/audit/merkle.ts';
import { auditSigner, openAuditStore } from '../../src/audit/open.ts';
import { encodeRange, extend } from '../../src/audit/store.ts';
import { verifyLog } from '../../src/audit/verify.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { PG_URL } from '../helpers.ts';
import { auditFixture, dropPgTables, item, openTestLog } from './helpers.ts';

after(dropPgTables);

it('keeps the PostgreSQL log consistent when a failover loses the newest entry and another writer regrows the head', async () => {
  const f = auditFixture('postgres');
  const a = await openAuditStore(f.setup);
  const b = await openAuditStore(f.setup);
  await a.append([item(0)]);
  await a.append([item(1)]); // A now believes the head is size 2 with entry 1 in it
  // The promoted standby never got entry 1: the database is back at size 1.
  const pool = new pg.Pool({ connectionString: PG_URL, max: 1 });
  const admin = await pool.connect();
  await admin.query('SET session_replication_role = replica'); // past the append-only triggers, as a restore would be
  await admin.query(`DELETE FROM ${f.table}_entries WHERE idx >= 1`);
  const { next } = extend(new CompactRange(), [item(0)]);
  await admin.query(`UPDATE ${f.table}_head SET size = 1, range = $1, root = $2`, [
    encodeRange(next),
    next.root(),
  ]);
  admin.release();
  await pool.end();
  await b.append([item(100)]); // another replica brings the head back to size 2, with a different entry
  await a.append([item(2)]); // same size as A expects, not the same tree: A must notice
  assert.deepEqual(await verifyLog(b, auditSigner(f.setup, silentLogger)), {
    ok: true,
    size: 3,
    checkpoints: 0,
    signedSize: 0,
    anchored: false,
  });
  await a.close();
  await b.close();
});

it('fails appends with ERR_AUDIT_UNAVAILABLE once PostgreSQL is unreachable, on the one-round-trip path too', async () => {
  const f = auditFixture('postgres');
  const { store, log } = await openTestLog(f.setup);
  await log.append(item(0));
  await log.append(item(1)); // the writer now knows the head: the next append takes the one-round-trip path
  // The database goes away under the writer (its pool can no longer hand out connections).
  await (store as unknown as { pool: pg.Pool }).pool.end();
  await assert.rejects(log.append(item(2)), { code: 'ERR_AUDIT_UNAVAILABLE' });
  log.stopTimer();
});
