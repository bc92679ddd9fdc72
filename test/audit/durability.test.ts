import assert from 'node:assert/strict';
import { unlinkSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import type { Durability } from '../../src/audit/log.ts';
import { AuditService } from '../../src/audit/service.ts';
import { type AuditStore, StableStorageFailed } from '../../src/audit/store.ts';
import { resultResponse } from '../../src/jsonrpc.ts';
import { auditDecisionStage, decisionStableStage } from '../../src/pipeline/stages/audit-decision.ts';
import { auditOutcomeStage } from '../../src/pipeline/stages/audit-outcome.ts';
import { testCallContext } from '../helpers.ts';
import { auditFixture, dropPgTables, item, itemOf, openTestLog, record, type StoreKind } from './helpers.ts';

/** A store whose flushes to stable storage wait for the test to let each one go. */
function gatedSync(store: AuditStore) {
  const entered: Array<() => void> = [];
  let calls = 0;
  let failWith: Error | undefined;
  let nextEntered: (() => void) | undefined;
  let open = false;
  const wrapped: AuditStore = Object.create(store);
  const commits: Array<{ entries: number; sync: boolean }> = [];
  wrapped.append = (items, opts) => {
    commits.push({ entries: items.length, sync: opts?.sync === true });
    return store.append(items, opts);
  };
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
    /** Each commit: how many entries, and whether it synced as it committed. */
    commits,
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

/** What a store throws when an fsync failed: final. */
const EIO = () => new StableStorageFailed('fdatasync: EIO');

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

/** A tools/call through the audit-decision stage, on a gated SQLite log in `durability`. */
async function decidedCall(durability: Durability, localUntilForward: () => boolean) {
  const { log, gate } = await gatedLog('sqlite', durability);
  const audit = new AuditService(async () => ({ log, hmacKey: Buffer.alloc(32, 1), clearArguments: [] }));
  const ctx = testCallContext({
    request: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'probe__echo', arguments: {} } },
  });
  await auditDecisionStage(audit, Date.now, localUntilForward).run(ctx);
  return { ctx, audit, gate, log };
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
      gate.release(EIO());
      await assert.rejects(waited, (err: { code?: string }) => err.code === 'ERR_AUDIT_UNAVAILABLE');
      await assert.rejects(
        log.append(item(2)),
        (err: { code?: string }) => err.code === 'ERR_AUDIT_UNAVAILABLE',
      );
      gate.open();
      await log.close();
    });

    it('a flush the store could not be asked for (its connection lost) denies the waiting answer, and the next flush tries again', async () => {
      const { log, gate } = await gatedLog(kind, OVERLAP);
      const index = await log.append(item(1));
      await gate.waiting();
      const waited = log.stable(index);
      gate.release(new Error('connection terminated'));
      await assert.rejects(waited, (err: { code?: string }) => err.code === 'ERR_AUDIT_UNAVAILABLE');
      const next = await log.append(item(2));
      gate.open();
      await log.stable(next);
      await log.close();
    });

    it('overlap: a record other than a decision starts no flush of its own, and is flushed by the timer', async () => {
      const { log, gate } = await gatedLog(kind, { mode: 'overlap', intervalMs: 5 });
      const lease = itemOf({ ...record(1), type: 'lease', event: 'issued' });
      const index = await log.append(lease);
      assert.equal(gate.calls, 0, 'a lease record started a flush at commit');
      await gate.waiting();
      const waited = log.stable(index);
      gate.release();
      await waited;
      assert.equal(gate.calls, 1);
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

    it('record: a decision committed with appendCommitted is not stable, and the next durable append takes it there in its own commit', async () => {
      const { log, gate } = await gatedLog(kind, { mode: 'record', intervalMs: 20 });
      const decision = await log.appendCommitted(item(1));
      assert.equal(log.isStable(decision), false, 'committed without a flush, yet stable');
      const lease = await log.append(itemOf({ ...record(2), type: 'lease', event: 'issued' }));
      assert.equal(log.isStable(decision), true);
      assert.equal(log.beforeForward(decision), undefined, 'forward would wait for a flush already made');
      await log.stable(lease);
      assert.equal(gate.calls, 0, 'a separate flush ran');
      gate.open();
      await log.close();
    });

    it('record: forward waits for the flush of its decision record, and is refused with ERR_AUDIT_UNAVAILABLE when it fails', async () => {
      const { log, gate } = await gatedLog(kind, { mode: 'record', intervalMs: 20 });
      const first = await log.appendCommitted(item(1));
      let forwarded = false;
      const waited = log.beforeForward(first)!.then(() => {
        forwarded = true;
      });
      await gate.waiting();
      await new Promise((r) => setImmediate(r));
      assert.equal(forwarded, false, 'forwarded before its decision record was flushed');
      gate.release();
      await waited;
      assert.equal(gate.calls, 1);
      const second = await log.appendCommitted(item(2));
      const refused = log.beforeForward(second)!;
      await gate.waiting();
      gate.release(EIO());
      await assert.rejects(refused, (err: { code?: string }) => err.code === 'ERR_AUDIT_UNAVAILABLE');
      await assert.rejects(
        log.append(item(3)),
        (err: { code?: string }) => err.code === 'ERR_AUDIT_UNAVAILABLE',
      );
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

describe('a failed fsync in a synced commit (record mode)', () => {
  it('acknowledges nothing more: the append and those queued behind it are refused, and nothing counts as stable', async () => {
    let failNext = true;
    const { log } = await openTestLog(auditFixture('sqlite').setup, { maxBatch: 1 }, (store) => {
      const wrapped: AuditStore = Object.create(store);
      wrapped.append = async (items, opts) => {
        const head = await store.append(items, opts);
        if (opts?.sync && failNext) {
          failNext = false;
          throw EIO();
        }
        return head;
      };
      return wrapped;
    });
    await log.init();
    const decision = await log.appendCommitted(item(1));
    const first = log.append(item(2));
    const queued = log.append(item(3));
    await assert.rejects(first, (err: { code?: string }) => err.code === 'ERR_AUDIT_UNAVAILABLE');
    await assert.rejects(queued, (err: { code?: string }) => err.code === 'ERR_AUDIT_UNAVAILABLE');
    assert.equal(log.isStable(decision), false);
    await assert.rejects(
      log.beforeForward(decision)!,
      (err: { code?: string }) => err.code === 'ERR_AUDIT_UNAVAILABLE',
    );
    await assert.rejects(
      log.append(item(4)),
      (err: { code?: string }) => err.code === 'ERR_AUDIT_UNAVAILABLE',
    );
    await log.close();
  });

  it('refuses a synced commit whose write-ahead log was deleted under the writer', async () => {
    const f = auditFixture('sqlite');
    const { log } = await openTestLog(f.setup);
    await log.init();
    await log.append(item(1));
    unlinkSync(`${f.setup.config.path}-wal`);
    await assert.rejects(
      log.append(item(2)),
      (err: { code?: string }) => err.code === 'ERR_AUDIT_UNAVAILABLE',
    );
    await assert.rejects(
      log.append(item(3)),
      (err: { code?: string }) => err.code === 'ERR_AUDIT_UNAVAILABLE',
    );
    await log.close();
  });
});

describe('the decision-stable stage in record mode', () => {
  const decided = (localUntilForward = false) =>
    decidedCall({ mode: 'record', intervalMs: 20 }, () => localUntilForward);

  it('lets the call on only once its decision record is on stable storage', async () => {
    const { ctx, audit, gate, log } = await decided();
    let passed = false;
    const stage = Promise.resolve(decisionStableStage(audit).run(ctx)).then(() => {
      passed = true;
    });
    await gate.waiting();
    await new Promise((r) => setImmediate(r));
    assert.equal(passed, false);
    gate.release();
    await stage;
    gate.open();
    await log.close();
  });

  it('denies the call with ERR_AUDIT_UNAVAILABLE when the flush fails', async () => {
    const { ctx, audit, gate, log } = await decided();
    const stage = Promise.resolve(decisionStableStage(audit).run(ctx));
    await gate.waiting();
    gate.release(EIO());
    await assert.rejects(stage, (err: { code?: string }) => err.code === 'ERR_AUDIT_UNAVAILABLE');
    gate.open();
    await log.close();
  });

  it('waits for the commit where a stage before forward may act outside the gateway', async () => {
    const { ctx, gate, log } = await decided(false);
    assert.equal(ctx.decisionIndex, 0, 'audit-decision returned before its record was committed');
    assert.deepEqual(gate.commits, [{ entries: 1, sync: false }]);
    gate.open();
    await log.close();
  });

  it('puts the decision of a call let through by break-glass on stable storage before its alert can go out', async () => {
    const { log, gate } = await gatedLog('sqlite', { mode: 'record', intervalMs: 20 });
    const audit = new AuditService(async () => ({ log, hmacKey: Buffer.alloc(32, 1), clearArguments: [] }));
    const ctx = testCallContext({
      request: {
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'probe__echo', arguments: {} },
      },
    });
    ctx.breakGlassId = 'bgw_1';
    await auditDecisionStage(audit, Date.now, () => true).run(ctx);
    assert.deepEqual(gate.commits, [{ entries: 1, sync: true }]);
    assert.equal(log.isStable(ctx.decisionIndex!), true);
    gate.open();
    await log.close();
  });

  it('commits a lease recorded on the way with the decision, in one commit and one fsync, and forward then waits for nothing', async () => {
    const { ctx, audit, gate, log } = await decided(true);
    assert.equal(ctx.decisionIndex, undefined, 'the commit was waited for');
    const lease = audit.append({ ...record(2), type: 'lease', event: 'issued' });
    await lease;
    assert.deepEqual(gate.commits, [{ entries: 2, sync: true }]);
    assert.equal(ctx.decisionIndex, 0);
    await decisionStableStage(audit).run(ctx);
    assert.equal(gate.calls, 0, 'a separate flush ran');
    gate.open();
    await log.close();
  });

  it('denies a call that has no decision record', async () => {
    const { audit, gate, log } = await decided();
    const bare = testCallContext({});
    await assert.rejects(
      Promise.resolve(decisionStableStage(audit).run(bare)),
      (err: { code?: string }) => err.code === 'ERR_AUDIT_UNAVAILABLE',
    );
    gate.open();
    await log.close();
  });
});

describe('the audit stages in overlap mode', () => {
  async function answered() {
    // The decision goes on at commit: its flush is what the upstream round trip overlaps.
    const call = await decidedCall(OVERLAP, () => false);
    call.ctx.response = resultResponse(1, { content: [] });
    return call;
  }

  it('holds the answer until the records of its call are on stable storage', async () => {
    const { ctx, audit, gate, log } = await answered();
    let released = false;
    const outcome = Promise.resolve(auditOutcomeStage(audit).run(ctx)).then(() => {
      released = true;
    });
    await gate.waiting();
    await new Promise((r) => setImmediate(r));
    assert.equal(released, false, 'answer released before its records were flushed');
    gate.open();
    await outcome;
    assert.equal(ctx.error, undefined);
    await log.close();
  });

  it('withholds the answer with ERR_AUDIT_UNAVAILABLE when the flush fails', async () => {
    const { ctx, audit, gate, log } = await answered();
    const outcome = Promise.resolve(auditOutcomeStage(audit).run(ctx));
    await gate.waiting();
    gate.release(EIO());
    await assert.rejects(outcome);
    assert.equal(ctx.error?.code, 'ERR_AUDIT_UNAVAILABLE');
    assert.ok(ctx.response && 'error' in ctx.response, 'the upstream answer went out');
    gate.open();
    await log.close();
  });
});
