import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { StableStorage } from '../../src/audit/stable-storage.ts';
import { StableStorageFailed } from '../../src/audit/store.ts';

/** A store's flush that finishes only when the test says so. */
function controlledSync() {
  const calls: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  const sync = () =>
    new Promise<void>((resolve, reject) => {
      calls.push({ resolve, reject });
    });
  return { sync, calls };
}

const settled = async (p: Promise<unknown>): Promise<'resolved' | 'rejected' | 'pending'> => {
  let state: 'resolved' | 'rejected' | 'pending' = 'pending';
  p.then(
    () => (state = 'resolved'),
    () => (state = 'rejected'),
  );
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return state;
};

describe('what of the audit log is on stable storage', () => {
  it('in record mode takes a synced commit as stable, flushes nothing on its own, and flushes an unsynced one only when asked', async () => {
    const s = controlledSync();
    const storage = new StableStorage({ mode: 'record', intervalMs: 0 }, s.sync, () => {});
    storage.committed(3, true, true);
    assert.equal(await settled(storage.stable(2)), 'resolved');
    storage.committed(4, true);
    assert.equal(s.calls.length, 0, 'a commit started a flush');
    assert.equal(storage.isStable(3), false);
    const asked = storage.stable(3);
    assert.equal(s.calls.length, 1);
    s.calls[0]!.resolve();
    assert.equal(await settled(asked), 'resolved');
  });

  it('in overlap mode starts a flush at a decision commit and covers commits made during it with exactly one more', async () => {
    const s = controlledSync();
    const storage = new StableStorage({ mode: 'overlap', intervalMs: 1000 }, s.sync, () => {});
    storage.committed(1, true);
    assert.equal(s.calls.length, 1, 'the decision flush started at once');
    storage.committed(2, true);
    storage.committed(3, true);
    const third = storage.stable(2);
    assert.equal(s.calls.length, 1, 'one flush at a time');
    s.calls[0]!.resolve();
    assert.equal(await settled(storage.stable(0)), 'resolved');
    assert.equal(await settled(third), 'pending', 'entry 2 was committed after the first flush began');
    assert.equal(s.calls.length, 2, 'one more flush for everything committed meanwhile');
    s.calls[1]!.resolve();
    assert.equal(await settled(third), 'resolved');
    assert.equal(s.calls.length, 2);
  });

  it('flushes any other record within intervalMs, by the injected clock, or sooner when an answer waits for it', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const s = controlledSync();
      const storage = new StableStorage({ mode: 'overlap', intervalMs: 20 }, s.sync, () => {});
      storage.committed(1, false);
      assert.equal(s.calls.length, 0, 'a lease starts no flush of its own');
      mock.timers.tick(19);
      assert.equal(s.calls.length, 0);
      mock.timers.tick(1);
      assert.equal(s.calls.length, 1, 'the interval flush');
      s.calls[0]!.resolve();
      await new Promise((r) => setImmediate(r));
      storage.committed(2, false);
      const waiting = storage.stable(1);
      assert.equal(s.calls.length, 2, 'an outcome waiting for it flushes now');
      s.calls[1]!.resolve();
      assert.equal(await settled(waiting), 'resolved');
      storage.stopTimer();
    } finally {
      mock.timers.reset();
    }
  });

  it('after a flush the store could not be asked for rejects the waiters then, and flushes again for the next', async () => {
    const s = controlledSync();
    const storage = new StableStorage({ mode: 'overlap', intervalMs: 1000 }, s.sync, () => {});
    storage.committed(1, true);
    const waiting = storage.stable(0);
    s.calls[0]!.reject(new Error('connection terminated'));
    await assert.rejects(waiting, { code: 'ERR_AUDIT_UNAVAILABLE' });
    const again = storage.stable(0);
    assert.equal(s.calls.length, 2);
    s.calls[1]!.resolve();
    assert.equal(await settled(again), 'resolved');
  });

  it('after a failed flush rejects every waiter and every later wait with ERR_AUDIT_UNAVAILABLE, and says so once', async () => {
    const s = controlledSync();
    const failures: unknown[] = [];
    const storage = new StableStorage({ mode: 'interval', intervalMs: 1000 }, s.sync, (e) =>
      failures.push(e),
    );
    storage.committed(1, true);
    const waiting = storage.stable(0);
    s.calls[0]!.reject(new StableStorageFailed('fdatasync: EIO'));
    await assert.rejects(waiting, { code: 'ERR_AUDIT_UNAVAILABLE' });
    await assert.rejects(storage.stable(0), { code: 'ERR_AUDIT_UNAVAILABLE' });
    assert.equal(failures.length, 1);
    storage.stopTimer();
  });
});
