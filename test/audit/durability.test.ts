import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Durability } from '../../src/audit/log.ts';
import type { AuditStore } from '../../src/audit/store.ts';
import { auditFixture, dropPgTables, item, openTestLog, type StoreKind } from './helpers.ts';

/** A store whose flushes to stable storage wait for the test to let each one go. */
function gatedSync(store: AuditStore) {
  const entered: Array<() => void> = [];
  let calls = 0;
  let failWith: Error | undefined;
  let nextEntered: (() => void) | undefined;
  let open = false;
  const wrapped: AuditStore = Object.create(store);
  wrapped.sync = async () => {
    calls++;
    if (open) return store.sync();
    const gate = new Promise<void>((resolve) => entered.push(resolve));
    nextEntered?.();
    nextEntered = undefined;
    await gate;
    if (failWith) throw failWith;
    await store.sync();
  };
  return {
    store: wrapped,
    get calls() {
      return calls;
    },
    /** Resolves once a flush is waiting (now, if one already is). */
    waiting: () =>
      entered.length > 0 ? Promise.resolve() : new Promise<void>((resolve) => (nextEntered = resolve)),
    /** Lets this and every later flush through (before the log closes with a flush of its own). */
    open() {
      open = true;
      this.release();
    },
    release(err?: Error) {
      failWith = err;
      for (const go of entered.splice(0)) go();
    },
  };
}

const OVERLAP: Durability = { mode: 'overlap', intervalMs: 20 };

async function gatedLog(kind: StoreKind, durability: Durability) {
  let gate: ReturnType<typeof gatedSync> | undefined;
  const { log } = await openTestLog(auditFixture(kind).setup, { durability }, (store) => {
    gate = gatedSync(store);
    return gate.store;
  });
  await log.init();
  return { log, gate: gate! };
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`audit durability modes (${kind})`, () => {
    after(async () => {
      if (kind === 'postgres') await dropPgTables();
    });

    it('overlap: an append is acknowledged at commit and is stable only after the flush it started', async () => {
      const { log, gate } = await gatedLog(kind, OVERLAP);
      const index = await log.append(item(1));
      await gate.waiting();
      let stable = false;
      const waited = log.stable(index).then(() => {
        stable = true;
      });
      await new Promise((r) => setImmediate(r));
      assert.equal(stable, false, 'stable before the flush finished');
      gate.release();
      await waited;
      assert.equal(stable, true);
      gate.open();
      await log.close();
    });

    it('overlap: appends made during a flush share the next one, not one flush each', async () => {
      const { log, gate } = await gatedLog(kind, OVERLAP);
      const first = await log.append(item(1));
      await gate.waiting();
      const more = await Promise.all([2, 3, 4, 5].map((n) => log.append(item(n))));
      const waits = [first, ...more].map((i) => log.stable(i));
      gate.release();
      await gate.waiting();
      gate.release();
      await Promise.all(waits);
      assert.equal(gate.calls, 2);
      gate.open();
      await log.close();
    });

    it('a failed flush rejects the waiting answer with ERR_AUDIT_UNAVAILABLE and refuses later appends', async () => {
      const { log, gate } = await gatedLog(kind, OVERLAP);
      const index = await log.append(item(1));
      await gate.waiting();
      const waited = log.stable(index);
      gate.release(new Error('EIO'));
      await assert.rejects(waited, (err: { code?: string }) => err.code === 'ERR_AUDIT_UNAVAILABLE');
      await assert.rejects(
        log.append(item(2)),
        (err: { code?: string }) => err.code === 'ERR_AUDIT_UNAVAILABLE',
      );
      gate.open();
      await log.close();
    });

    it('record: every acknowledged append is already stable, and no separate flush runs', async () => {
      const { log, gate } = await gatedLog(kind, { mode: 'record', intervalMs: 20 });
      const index = await log.append(item(1));
      await log.stable(index);
      assert.equal(gate.calls, 0);
      assert.equal(log.holdsAnswers, false);
      gate.open();
      await log.close();
    });

    it('interval: answers are not held, and the timer flushes what was committed', async () => {
      const { log, gate } = await gatedLog(kind, { mode: 'interval', intervalMs: 5 });
      assert.equal(log.holdsAnswers, false);
      const index = await log.append(item(1));
      await gate.waiting();
      const waited = log.stable(index);
      gate.release();
      await waited;
      gate.open();
      await log.close();
    });
  });
}
