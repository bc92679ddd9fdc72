import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { PostgresRevocationStore } from '../../src/state/postgres.ts';
import type { Revocation } from '../../src/state/revocations.ts';
import { PG_URL } from '../helpers.ts';
import { dropPgTable, freezableProxy, heldBackoff, sql } from './pg-revocations.ts';

const run = randomBytes(4).toString('hex');
let n = 0;
/** A table of its own for each test. */
const prefix = () => `ch${run}_${n++}`;

/** Waits until `store` has applied the revocation of `value`, by its `applied` event. */
async function applied(store: PostgresRevocationStore, value: string): Promise<void> {
  while (!store.feed.holds('jti', value)) {
    const [r] = (await once(store.feed, 'applied')) as [Revocation];
    if (r.value === value) return;
  }
}

describe('the PostgreSQL revocation store, kept current by LISTEN/NOTIFY', () => {
  it('gives another replica a revocation by notification, and one another tool inserts too', async () => {
    const p = prefix();
    const a = new PostgresRevocationStore(PG_URL, p);
    const b = new PostgresRevocationStore(PG_URL, p);
    try {
      assert.equal(await b.find({ tokenId: 'j1' }), undefined);
      const seen = applied(b, 'j1');
      await a.revoke({ kind: 'jti', value: 'j1', revokedAt: 10, reason: 'leaked' });
      await seen;
      assert.deepEqual(await b.find({ tokenId: 'j1', user: 'alice' }), {
        kind: 'jti',
        value: 'j1',
        revokedAt: 10,
        reason: 'leaked',
      });
      // The trigger notifies for any writer, not only for this store's revoke.
      const byTool = applied(b, 'j2');
      await sql(`INSERT INTO ${p}_revocations (kind, value, revoked_at) VALUES ('jti', 'j2', 11)`);
      await byTool;
      assert.equal((await b.find({ tokenId: 'j2' }))?.revokedAt, 11);
      // Each replica's heartbeat reaches the other through the channel, and is no reason to reload.
      let reloads = 0;
      b.feed.on('live', () => reloads++);
      assert.equal(await a.find({ tokenId: 'j0' }), undefined);
      await a.sync();
      await b.sync();
      assert.equal(reloads, 0);
    } finally {
      await a.close();
      await b.close();
      await dropPgTable(`${p}_revocations`);
    }
  });

  it('denies every check while its LISTEN connection is down, and honours on reconnect a revocation made meanwhile', async () => {
    const p = prefix();
    const held = heldBackoff();
    const writer = new PostgresRevocationStore(PG_URL, p);
    const replica = new PostgresRevocationStore(PG_URL, p, {
      backoff: held.backoff,
      applicationName: `portcullis-test ${p}`,
    });
    try {
      assert.equal(await replica.find({ tokenId: 'j1' }), undefined);
      const down = once(replica.feed, 'down');
      const waiting = held.waiting();
      const killed = await sql(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
        [`portcullis-test ${p}`],
      );
      assert.equal(killed.rowCount, 1);
      await down;
      await assert.rejects(replica.find({ tokenId: 'j1' }), { code: 'ERR_STATE_UNAVAILABLE' });
      await assert.rejects(replica.find({}), { code: 'ERR_STATE_UNAVAILABLE' });
      await assert.rejects(replica.sync(), { code: 'ERR_STATE_UNAVAILABLE' });
      // Revoked while nobody listens: its notification is lost, the reload must find it.
      await writer.revoke({ kind: 'jti', value: 'j1', revokedAt: 20 });
      await assert.rejects(replica.find({ tokenId: 'j1' }), { code: 'ERR_STATE_UNAVAILABLE' });
      const live = once(replica.feed, 'live');
      (await waiting)();
      await live;
      assert.equal((await replica.find({ tokenId: 'j1' }))?.revokedAt, 20);
    } finally {
      await writer.close();
      await replica.close();
      await dropPgTable(`${p}_revocations`);
    }
  });

  it('stops trusting its copy when the channel stops answering, and denies', async () => {
    const p = prefix();
    const proxy = await freezableProxy();
    let clock = 0;
    const replica = new PostgresRevocationStore(proxy.url, p, {
      now: () => clock,
      staleAfterMs: 500,
      backoff: heldBackoff().backoff,
    });
    try {
      assert.equal(await replica.find({ tokenId: 'j1' }), undefined);
      // Past the bound, a check first confirms the channel with one round trip.
      clock += 10_000;
      assert.equal(await replica.find({ tokenId: 'j1' }), undefined);
      const down = once(replica.feed, 'down');
      proxy.freeze();
      clock += 10_000;
      await assert.rejects(replica.find({ tokenId: 'j1' }), { code: 'ERR_STATE_UNAVAILABLE' });
      const [why] = (await down) as [Error];
      assert.match(why.message, /no answer on the revocation channel within 500 ms/);
      await assert.rejects(replica.find({ tokenId: 'j1' }), { code: 'ERR_STATE_UNAVAILABLE' });
    } finally {
      await replica.close();
      await proxy.close();
      await dropPgTable(`${p}_revocations`);
    }
  });

  it('reloads the table for a row too large to travel in a notification', async () => {
    const p = prefix();
    const a = new PostgresRevocationStore(PG_URL, p);
    const b = new PostgresRevocationStore(PG_URL, p);
    try {
      assert.equal(await b.find({ user: 'x' }), undefined);
      const reloaded = once(b.feed, 'live');
      const huge = 'u'.repeat(9000);
      await a.revoke({ kind: 'sub', value: huge, revokedAt: 30 });
      await reloaded;
      assert.equal((await b.find({ user: huge }))?.kind, 'sub');
      // A long reason is dropped from the notification, not the revocation.
      const seen = applied(b, 'j3');
      await a.revoke({ kind: 'jti', value: 'j3', revokedAt: 31, reason: 'r'.repeat(9000) });
      await seen;
      assert.equal((await b.find({ tokenId: 'j3' }))?.revokedAt, 31);
    } finally {
      await a.close();
      await b.close();
      await dropPgTable(`${p}_revocations`);
    }
  });
});
