import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeferredRevocationStore } from '../../src/state/deferred.ts';
import { SqliteRevocationStore } from '../../src/state/sqlite.ts';

describe('a revocation store whose driver loads on first use', () => {
  it('loads its driver once, on the first check, and answers from it', async () => {
    let loads = 0;
    const store = new DeferredRevocationStore(async () => {
      loads++;
      return new SqliteRevocationStore(':memory:');
    });
    assert.equal(loads, 0);
    await store.revoke({ kind: 'sub', value: 'alice', revokedAt: 1 });
    assert.equal((await store.find({ user: 'alice' }))?.kind, 'sub');
    assert.equal((await store.list()).length, 1);
    assert.equal(loads, 1);
    await store.close();
  });

  it('closes without loading a driver it never used', async () => {
    let loads = 0;
    const store = new DeferredRevocationStore(async () => {
      loads++;
      return new SqliteRevocationStore(':memory:');
    });
    await store.close();
    assert.equal(loads, 0);
  });

  it('fails every check when its driver cannot load, so the caller denies', async () => {
    const store = new DeferredRevocationStore(async () => {
      throw new Error('driver missing');
    });
    await assert.rejects(store.find({ user: 'alice' }), /driver missing/);
    await assert.rejects(store.find({ user: 'alice' }), /driver missing/);
    await store.close();
  });
});
