import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { PostgresRevocationStore } from '../../src/state/postgres.ts';
import { RedisRevocationStore } from '../../src/state/redis.ts';
import type { FeedOptions } from '../../src/state/revocation-feed.ts';
import type { Revocation } from '../../src/state/revocations.ts';
import { PG_URL, REDIS_URL } from '../helpers.ts';
import { dropPgTable, freezableProxy, heldBackoff, sql } from './shared-revocations.ts';

const run = randomBytes(4).toString('hex');
let n = 0;

type Store = PostgresRevocationStore | RedisRevocationStore;

/** What differs between the two shared stores: how to open one, end its channel from the server, clean up. */
interface Backend {
  readonly name: string;
  readonly url: string;
  /** A name of its own for each test. */
  prefix(): string;
  open(prefix: string, options?: FeedOptions & { name?: string; url?: string }): Store;
  /** Ends, from the server's side, every connection opened under `name`; how many. */
  kill(name: string): Promise<number>;
  cleanup(prefix: string): Promise<void>;
}

const backends: Backend[] = [
  {
    name: 'PostgreSQL',
    url: PG_URL,
    prefix: () => `ch${run}_${n++}`,
    open: (prefix, o = {}) =>
      new PostgresRevocationStore(o.url ?? PG_URL, prefix, {
        ...o,
        ...(o.name ? { applicationName: o.name } : {}),
      }),
    kill: async (name) =>
      (
        await sql('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [
          name,
        ])
      ).rowCount ?? 0,
    cleanup: (prefix) => dropPgTable(`${prefix}_revocations`),
  },
  {
    name: 'Redis',
    url: REDIS_URL,
    prefix: () => `test:ch${run}:${n++}:`,
    open: (prefix, o = {}) =>
      new RedisRevocationStore(o.url ?? REDIS_URL, prefix, {
        ...o,
        ...(o.name ? { connectionName: o.name } : {}),
      }),
    kill: async (name) => {
      const r = new Redis(REDIS_URL);
      try {
        const ids = String(await r.client('LIST'))
          .split('\n')
          .filter((line) => line.includes(` name=${name} `))
          .map((line) => /\bid=(\d+)/.exec(line)![1]!);
        for (const id of ids) await r.client('KILL', 'ID', id);
        return ids.length;
      } finally {
        r.disconnect();
      }
    },
    cleanup: async (prefix) => {
      const r = new Redis(REDIS_URL);
      await r.del(`${prefix}revocations`);
      r.disconnect();
    },
  },
];

/** Waits until `store` has applied the revocation of `value`, by its `applied` event. */
async function applied(store: Store, value: string): Promise<void> {
  while (!store.feed.holds('jti', value)) {
    const [r] = (await once(store.feed, 'applied')) as [Revocation];
    if (r.value === value) return;
  }
}

for (const backend of backends) {
  describe(`the ${backend.name} revocation store, kept current by a subscribed channel`, () => {
    it('gives another replica a revocation by message, with no reload for the replicas’ heartbeats', async () => {
      const p = backend.prefix();
      const a = backend.open(p);
      const b = backend.open(p);
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
        await backend.cleanup(p);
      }
    });

    it('denies every check while its channel is down, and honours on reconnect a revocation made meanwhile', async () => {
      const p = backend.prefix();
      const name = `portcullis-test-${run}-${n++}`;
      const held = heldBackoff();
      const writer = backend.open(p);
      const replica = backend.open(p, { backoff: held.backoff, name });
      try {
        assert.equal(await replica.find({ tokenId: 'j1' }), undefined);
        const down = once(replica.feed, 'down');
        const waiting = held.waiting();
        assert.ok((await backend.kill(name)) >= 1);
        await down;
        await assert.rejects(replica.find({ tokenId: 'j1' }), { code: 'ERR_STATE_UNAVAILABLE' });
        await assert.rejects(replica.find({}), { code: 'ERR_STATE_UNAVAILABLE' });
        await assert.rejects(replica.sync(), { code: 'ERR_STATE_UNAVAILABLE' });
        // Revoked while nobody listens: its message is lost, the reload must find it.
        await writer.revoke({ kind: 'jti', value: 'j1', revokedAt: 20 });
        await assert.rejects(replica.find({ tokenId: 'j1' }), { code: 'ERR_STATE_UNAVAILABLE' });
        const live = once(replica.feed, 'live');
        (await waiting)();
        await live;
        assert.equal((await replica.find({ tokenId: 'j1' }))?.revokedAt, 20);
      } finally {
        await writer.close();
        await replica.close();
        await backend.cleanup(p);
      }
    });

    it('stops trusting its copy when the channel stops answering, and denies', async () => {
      const p = backend.prefix();
      const proxy = await freezableProxy(backend.url);
      let clock = 0;
      const replica = backend.open(p, {
        url: proxy.url,
        now: () => clock,
        // The heartbeat's wait is real time: long enough for a loaded machine, and under the 3 s a check waits at most.
        staleAfterMs: 2000,
        backoff: heldBackoff().backoff,
      });
      try {
        assert.equal(await replica.find({ tokenId: 'j1' }), undefined);
        // Past the bound, a check first confirms the channel with one heartbeat.
        clock += 10_000;
        assert.equal(await replica.find({ tokenId: 'j1' }), undefined);
        const down = once(replica.feed, 'down');
        proxy.freeze();
        clock += 10_000;
        await assert.rejects(replica.find({ tokenId: 'j1' }), { code: 'ERR_STATE_UNAVAILABLE' });
        const [why] = (await down) as [Error];
        assert.match(why.message, /no answer on the revocation channel within 2000 ms/);
        await assert.rejects(replica.find({ tokenId: 'j1' }), { code: 'ERR_STATE_UNAVAILABLE' });
      } finally {
        await replica.close();
        await proxy.close();
        await backend.cleanup(p);
      }
    });
  });
}

describe('the PostgreSQL revocation store’s trigger', () => {
  it('notifies the replicas of a row another tool inserts', async () => {
    const p = `ch${run}_${n++}`;
    const b = new PostgresRevocationStore(PG_URL, p);
    try {
      assert.equal(await b.find({ tokenId: 'j2' }), undefined);
      const byTool = applied(b, 'j2');
      await sql(`INSERT INTO ${p}_revocations (kind, value, revoked_at) VALUES ('jti', 'j2', 11)`);
      await byTool;
      assert.equal((await b.find({ tokenId: 'j2' }))?.revokedAt, 11);
    } finally {
      await b.close();
      await dropPgTable(`${p}_revocations`);
    }
  });

  it('makes the replicas reload the table for a row too large to travel in a notification', async () => {
    const p = `ch${run}_${n++}`;
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
