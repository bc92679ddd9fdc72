import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';
import { PostgresRevocationStore } from '../../src/state/postgres.ts';
import { RedisRevocationStore } from '../../src/state/redis.ts';
import type { RevocationStore } from '../../src/state/revocations.ts';
import { SqliteRevocationStore } from '../../src/state/sqlite.ts';
import { PG_URL, REDIS_URL } from '../helpers.ts';
import { dropPgTable } from './shared-revocations.ts';

const run = randomBytes(4).toString('hex');
const dir = mkdtempSync(join(tmpdir(), 'portcullis-state-'));

const stores: [string, () => RevocationStore, () => Promise<void>][] = [
  ['SQLite', () => new SqliteRevocationStore(join(dir, `r-${run}.db`)), async () => {}],
  [
    'PostgreSQL',
    () => new PostgresRevocationStore(PG_URL, `t${run}`),
    () => dropPgTable(`t${run}_revocations`),
  ],
  [
    'Redis',
    () => new RedisRevocationStore(REDIS_URL, `test:${run}:`),
    async () => {
      const r = new Redis(REDIS_URL);
      await r.del(`test:${run}:revocations`);
      r.disconnect();
    },
  ],
];

after(() => rmSync(dir, { recursive: true, force: true }));

for (const [name, open, cleanup] of stores) {
  describe(`the ${name} revocation store`, () => {
    after(cleanup);

    it('finds a revocation by token id, user or workload, and nothing else', async () => {
      const writer = open();
      const reader = open();
      try {
        assert.equal(
          await reader.find({ tokenId: 'j1', user: 'alice', workload: 'spiffe://a/b' }),
          undefined,
        );
        await writer.revoke({ kind: 'jti', value: 'j1', revokedAt: 1000, reason: 'leaked' });
        await writer.revoke({ kind: 'sub', value: 'bob', revokedAt: 2000 });
        await writer.revoke({ kind: 'workload', value: 'spiffe://a/evil', revokedAt: 3000 });
        await reader.sync();
        assert.deepEqual(await reader.find({ tokenId: 'j1' }), {
          kind: 'jti',
          value: 'j1',
          revokedAt: 1000,
          reason: 'leaked',
        });
        assert.equal((await reader.find({ tokenId: 'j2', user: 'bob' }))?.kind, 'sub');
        assert.equal((await reader.find({ workload: 'spiffe://a/evil' }))?.kind, 'workload');
        assert.equal(
          await reader.find({ tokenId: 'j2', user: 'alice', workload: 'spiffe://a/b' }),
          undefined,
        );
        assert.equal(await reader.find({}), undefined);
        await writer.revoke({ kind: 'jti', value: 'j1', revokedAt: 9999 });
        const all = await reader.list();
        assert.deepEqual(
          all.map((r) => `${r.kind}:${r.value}:${r.revokedAt}`),
          ['jti:j1:1000', 'sub:bob:2000', 'workload:spiffe://a/evil:3000'],
        );
      } finally {
        await writer.close();
        await reader.close();
      }
    });

    it('sees its own revocation right after a check found none', async () => {
      const store = open();
      try {
        assert.equal(await store.find({ tokenId: 'j7' }), undefined);
        await store.revoke({ kind: 'jti', value: 'j7', revokedAt: 6 });
        assert.equal((await store.find({ tokenId: 'j7' }))?.kind, 'jti');
      } finally {
        await store.close();
      }
    });
  });
}

describe('a revocation store that cannot be reached', () => {
  it('throws instead of answering "not revoked"', async () => {
    const pgDown = new PostgresRevocationStore('postgres://postgres@127.0.0.1:1/test', `t${run}`);
    await assert.rejects(pgDown.find({ tokenId: 'x' }));
    await pgDown.close();
    const redisDown = new RedisRevocationStore('redis://127.0.0.1:1', 'x:');
    await assert.rejects(redisDown.find({ tokenId: 'x' }));
    await redisDown.close();
  });
});

describe('the SQLite revocation store, checked over and over', () => {
  it('sees a revocation another connection commits right after a check found none', async () => {
    const path = join(dir, `again-${run}.db`);
    const gateway = new SqliteRevocationStore(path);
    const cli = new SqliteRevocationStore(path);
    try {
      for (let i = 0; i < 3; i++)
        assert.equal(await gateway.find({ tokenId: 'j9', user: 'carol' }), undefined);
      await cli.revoke({ kind: 'sub', value: 'carol', revokedAt: 5 });
      assert.equal((await gateway.find({ tokenId: 'j9', user: 'carol' }))?.kind, 'sub');
    } finally {
      await gateway.close();
      await cli.close();
    }
  });
});

describe('the PostgreSQL revocation store, unreachable', () => {
  it('rejects a check rather than answering "not revoked"', async () => {
    // Nothing listens on port 1: a refused connection must surface, so the caller denies.
    const store = new PostgresRevocationStore('postgres://postgres@127.0.0.1:1/test', `t${run}down`);
    try {
      await assert.rejects(store.find({ tokenId: 'j1', user: 'alice' }), { code: 'ERR_STATE_UNAVAILABLE' });
      await assert.rejects(store.find({ tokenId: 'j1', user: 'alice' }), { code: 'ERR_STATE_UNAVAILABLE' });
    } finally {
      await store.close();
    }
  });
});

describe('a revocation store that stalls', () => {
  it('rejects the first PostgreSQL check while the table it must load is locked, instead of waiting', {
    timeout: 20_000,
  }, async () => {
    const table = `t${run}stall`;
    const running = new PostgresRevocationStore(PG_URL, table);
    const starting = new PostgresRevocationStore(PG_URL, table);
    const locker = new pg.Client(PG_URL);
    await locker.connect();
    try {
      assert.equal(await running.find({ tokenId: 'warm' }), undefined); // creates the table, loads it
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE ${table}_revocations IN ACCESS EXCLUSIVE MODE`);
      // A replica already running answers from its copy: the lock is not in a check's way.
      assert.equal(await running.find({ tokenId: 'j1' }), undefined);
      const err = await starting.find({ tokenId: 'j1' }).then(
        () => assert.fail('a check answered without loading the table'),
        (e: unknown) => e as Error & { code: string },
      );
      assert.equal(err.code, 'ERR_STATE_UNAVAILABLE');
      assert.match(String((err.cause as Error).message), /timed? ?out/i);
    } finally {
      await locker.query('ROLLBACK').catch(() => {});
      await locker.end();
      await running.close();
      await starting.close();
      await dropPgTable(`${table}_revocations`);
    }
  });

  it('rejects a Redis check when the server accepts but never answers', { timeout: 20_000 }, async () => {
    const sockets: Socket[] = [];
    const silent = createServer((s) => void sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const { port } = silent.address() as AddressInfo;
    const store = new RedisRevocationStore(`redis://127.0.0.1:${port}`, 'x:');
    try {
      await assert.rejects(store.find({ tokenId: 'j1' }));
    } finally {
      await store.close().catch(() => {});
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });
});
