import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Worker } from 'node:worker_threads';
import { AuditLog } from '../../src/audit/log.ts';
import { auditSigner } from '../../src/audit/open.ts';
import type { AppendItem, AuditStore } from '../../src/audit/store.ts';
import { SqliteAuditStore } from '../../src/audit/store-sqlite.ts';
import { ThreadedAuditStore } from '../../src/audit/store-thread.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { auditFixture, item } from './helpers.ts';

/** The store, counting the transactions (batches) it is asked to commit. */
function counting(store: AuditStore): { store: AuditStore; batches: number[] } {
  const batches: number[] = [];
  const append = store.append.bind(store);
  return {
    batches,
    store: Object.assign(Object.create(store) as AuditStore, {
      append: (items: readonly AppendItem[]) => {
        batches.push(items.length);
        return append(items);
      },
    }),
  };
}

function logOf(store: AuditStore, setup: ReturnType<typeof auditFixture>['setup']): AuditLog {
  const signer = auditSigner(setup, silentLogger);
  return new AuditLog(store, {
    signer,
    origin: signer.name,
    checkpointEveryEntries: 1_000,
    checkpointEveryMs: 60_000,
    groupCommit: true,
    maxBatch: 256,
    log: silentLogger,
  });
}

const nextTick = () => new Promise((r) => setImmediate(r));

describe('the SQLite audit store on its own thread', () => {
  it('acknowledges an append only once the entry can be read back from the database file', async () => {
    const { setup } = auditFixture('sqlite');
    const store = await ThreadedAuditStore.open(setup.config.path);
    const log = logOf(store, setup);
    const index = await log.append(item(7));
    const reader = new SqliteAuditStore(setup.config.path, { readOnly: true });
    const [entry] = await reader.entries(index, index + 1);
    assert.deepEqual(JSON.parse(entry!.leaf.toString()), { n: 7 });
    assert.ok(Buffer.isBuffer((await store.head()).root), 'tree roots come back as Buffers');
    await reader.close();
    await log.close();
  });

  it('batches appends that arrive while a commit is in flight into the next transaction', async () => {
    const { setup } = auditFixture('sqlite');
    const { store, batches } = counting(await ThreadedAuditStore.open(setup.config.path));
    const log = logOf(store, setup);
    const acks: Promise<number>[] = [];
    for (let n = 0; n < 40; n++) {
      acks.push(log.append(item(n)));
      await nextTick();
    }
    const indices = await Promise.all(acks);
    assert.deepEqual(
      indices,
      Array.from({ length: 40 }, (_, i) => i),
    );
    assert.equal(
      batches.reduce((a, b) => a + b, 0),
      40,
    );
    assert.ok(batches.length < 40, `40 appends on 40 turns of the event loop took ${batches.length} commits`);
    await log.close();
  });

  it('fails every waiting and later append with ERR_AUDIT_UNAVAILABLE when its thread dies', async () => {
    const { setup } = auditFixture('sqlite');
    const store = await ThreadedAuditStore.open(setup.config.path);
    const log = logOf(store, setup);
    await log.append(item(0));
    const waiting = log.append(item(1));
    await (store as unknown as { worker: Worker }).worker.terminate();
    await assert.rejects(waiting, { code: 'ERR_AUDIT_UNAVAILABLE' });
    await assert.rejects(log.append(item(2)), { code: 'ERR_AUDIT_UNAVAILABLE' });
    await assert.rejects(store.head(), { code: 'ERR_AUDIT_UNAVAILABLE' });
    log.stopTimer();
  });

  it('lets the process exit once idle, without being closed', () => {
    const { setup, dir } = auditFixture('sqlite');
    const script = `
      const { ThreadedAuditStore } = await import(${JSON.stringify(new URL('../../src/audit/store-thread.ts', import.meta.url).href)});
      const store = await ThreadedAuditStore.open(${JSON.stringify(setup.config.path)});
      const leaf = Buffer.from('{}');
      const meta = { kind: 'decision', callId: 'c', principal: 'p', tool: 't', decision: 'none', session: 's', time: 0 };
      const head = await store.append([{ leaf, meta, blobs: [] }]);
      console.log(head.size);`;
    const file = join(dir, 'append-and-leave.mjs');
    writeFileSync(file, script);
    const run = spawnSync(process.execPath, [file], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(run.signal, null, 'the process had to be killed: the idle store kept it alive');
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim(), '1', 'the awaited append completed before the process exited');
  });

  it('refuses to open a log it cannot create, with ERR_AUDIT_UNAVAILABLE', async () => {
    const { dir } = auditFixture('sqlite');
    const notADirectory = join(dir, 'portcullis.yaml');
    await assert.rejects(ThreadedAuditStore.open(join(notADirectory, 'audit.db')), {
      code: 'ERR_AUDIT_UNAVAILABLE',
    });
  });
});
