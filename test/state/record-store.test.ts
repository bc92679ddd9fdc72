import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { StateConfig } from '../../src/state/config.ts';
import { DeferredRecordStore } from '../../src/state/deferred.ts';
import { openRecordStore } from '../../src/state/open.ts';
import { findLimit, MAX_BODY_BYTES, MAX_KEY_BYTES } from '../../src/state/record-rules.ts';
import type { RecordStore, StoredRecord } from '../../src/state/records.ts';
import { SqliteRecordStore } from '../../src/state/records-sqlite.ts';
import { PG_URL, REDIS_URL } from '../helpers.ts';

const run = randomBytes(4).toString('hex');
const dir = mkdtempSync(join(tmpdir(), 'portcullis-records-'));
/** Every record the suite keeps expires long after any purge it runs. */
const LATER = 4_000_000_000_000;

interface Subject {
  readonly name: string;
  readonly config: StateConfig;
  cleanup(): Promise<void>;
}

const subjects: Subject[] = [
  { name: 'SQLite', config: { store: 'sqlite', path: `records-${run}.db` }, cleanup: async () => {} },
  {
    name: 'PostgreSQL',
    config: { store: 'postgres', url: PG_URL, prefix: `rec${run}` },
    async cleanup() {
      const c = new pg.Client(PG_URL);
      await c.connect();
      await c.query(`DROP TABLE IF EXISTS rec${run}_records`);
      await c.end();
    },
  },
  {
    name: 'Redis',
    config: { store: 'redis', url: REDIS_URL, prefix: `test:rec:${run}:` },
    async cleanup() {
      const r = new Redis(REDIS_URL);
      const keys = await r.keys(`test:rec:${run}:*`);
      if (keys.length > 0) await r.del(...keys);
      r.disconnect();
    },
  },
];

const record = (id: string, fields: Partial<Omit<StoredRecord, 'version'>> = {}) => ({
  kind: 'approval' as const,
  id,
  status: 'pending',
  matchKey: `m-${id}`,
  createdAt: 1000,
  expiresAt: LATER,
  body: { id },
  ...fields,
});

/** Starts one worker per racer, each with its own store; releases them together once all are connected. */
async function raceInWorkers(config: StateConfig, target: StoredRecord, racers: number): Promise<boolean[]> {
  const start = new SharedArrayBuffer(4);
  const url = new URL('../fixtures/record-racer.ts', import.meta.url);
  const workers = Array.from(
    { length: racers },
    (_, i) =>
      new Worker(url, { workerData: { config, baseDir: dir, record: target, racer: `w${i}`, start } }),
  );
  const message = (w: Worker) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
  await Promise.all(workers.map(message));
  const results = workers.map(message);
  Atomics.store(new Int32Array(start), 0, 1);
  Atomics.notify(new Int32Array(start), 0);
  return (await Promise.all(results)).map((m) => m.won === true);
}

after(() => rmSync(dir, { recursive: true, force: true }));

for (const subject of subjects) {
  describe(`the ${subject.name} record store`, () => {
    const store = openRecordStore(subject.config, dir);
    after(async () => {
      await store.close();
      await subject.cleanup();
    });

    it('stores a new record at version 1 and refuses a second of the same kind and id, keeping the first', async () => {
      assert.equal(await store.insert(record('dup', { body: { first: true } })), true);
      assert.equal(await store.insert(record('dup', { status: 'granted', body: { first: false } })), false);
      assert.deepEqual(await store.get('approval', 'dup'), {
        ...record('dup', { body: { first: true } }),
        version: 1,
      });
      assert.equal(
        await store.insert({ ...record('dup'), kind: 'nonce' }),
        true,
        'ids are unique within a kind',
      );
      assert.equal((await store.get('nonce', 'dup'))?.kind, 'nonce');
    });

    it('keeps tool pins: ids with slashes, colons and "#", a status of their own, the latest expiry there is', async () => {
      const ids = ['up/read_file', 'up/#instructions', 'up/ns:tool'];
      for (const id of ids)
        await store.insert(
          record(id, { kind: 'pin', status: 'pinned', matchKey: 'up', expiresAt: Number.MAX_SAFE_INTEGER }),
        );
      const pins = await store.getMany('pin', ids);
      assert.deepEqual(
        pins.map((r) => [r.kind, r.id, r.expiresAt]),
        ids.map((id) => ['pin', id, Number.MAX_SAFE_INTEGER]),
      );
      const v2 = await store.replace(pins[1]!, {
        status: 'quarantined',
        matchKey: 'up',
        expiresAt: pins[1]!.expiresAt,
        body: {},
      });
      assert.equal(v2?.version, 2);
      assert.deepEqual(
        (await store.find('pin', { status: ['quarantined'] })).map((r) => r.id),
        ['up/#instructions'],
      );
    });

    it('gets one record or several, in the order asked, leaving out ids it does not hold', async () => {
      for (const id of ['g1', 'g2', 'g3']) await store.insert(record(id));
      assert.equal(await store.get('approval', 'g-missing'), undefined);
      assert.equal(await store.get('breakglass', 'g1'), undefined, 'another kind does not answer');
      const many = await store.getMany('approval', ['g3', 'g-missing', 'g1', 'g3']);
      assert.deepEqual(
        many.map((r) => r.id),
        ['g3', 'g1'],
      );
      assert.deepEqual(await store.getMany('approval', []), []);
    });

    it('finds by status and by match key, newest first with ties broken by id, up to the limit', async () => {
      const s = (name: string) => `${name}-find`;
      await store.insert(record('f-a', { status: s('pending'), matchKey: 'call-1', createdAt: 10 }));
      await store.insert(record('f-b', { status: s('granted'), matchKey: 'call-1', createdAt: 30 }));
      // Byte order puts 'Z' before 'b'; a locale's collation would not.
      await store.insert(record('f-Z', { status: s('pending'), matchKey: 'call-2', createdAt: 30 }));
      await store.insert(record('f-d', { status: s('denied'), matchKey: 'call-1', createdAt: 20 }));
      await store.insert(record('f-é', { status: s('pending'), matchKey: 'call-1', createdAt: 30 }));
      const ids = (rs: StoredRecord[]) => rs.map((r) => r.id);
      const both = [s('pending'), s('granted')];
      assert.deepEqual(ids(await store.find('approval', { status: both })), ['f-é', 'f-b', 'f-Z', 'f-a']);
      assert.deepEqual(ids(await store.find('approval', { status: both, limit: 2 })), ['f-é', 'f-b']);
      assert.deepEqual(ids(await store.find('approval', { status: [s('denied')] })), ['f-d']);
      assert.deepEqual(ids(await store.find('approval', { matchKey: 'call-1' })), [
        'f-é',
        'f-b',
        'f-d',
        'f-a',
      ]);
      assert.deepEqual(ids(await store.find('approval', { matchKey: 'call-1', status: both, limit: 2 })), [
        'f-é',
        'f-b',
      ]);
      assert.deepEqual(ids(await store.find('approval', { matchKey: 'call-1', status: [s('expired')] })), []);
      assert.deepEqual(
        ids(await store.find('nonce', { matchKey: 'call-1' })),
        [],
        'another kind is not searched',
      );
    });

    it('finds the newest records of a kind when no filter is given', async () => {
      for (const [id, createdAt] of [
        ['b1', 5],
        ['b2', 7],
        ['b3', 6],
      ] as const)
        await store.insert(record(id, { kind: 'breakglass', createdAt }));
      const found = await store.find('breakglass', { limit: 2 });
      assert.deepEqual(
        found.map((r) => r.id),
        ['b2', 'b3'],
      );
    });

    it('finds nothing for an empty status list, returns 100 by default, and refuses a limit below one', async () => {
      for (let i = 0; i < 105; i++) await store.insert(record(`many-${i}`, { status: 'bulk', createdAt: i }));
      assert.deepEqual(await store.find('approval', { status: [] }), []);
      const page = await store.find('approval', { status: ['bulk'] });
      assert.equal(page.length, 100);
      assert.equal(page[0]?.id, 'many-104');
      assert.equal((await store.find('approval', { status: ['bulk'], limit: 5000 })).length, 105);
      await assert.rejects(store.find('approval', { status: ['bulk'], limit: 0 }), RangeError);
    });

    it('replaces a record once, moving its indexes; a replace from a stale version writes nothing', async () => {
      await store.insert(record('r1', { status: 'r-pending', matchKey: 'r-old' }));
      const v1 = (await store.get('approval', 'r1'))!;
      const change = { status: 'r-granted', matchKey: 'r-new', expiresAt: LATER + 1, body: { grants: 1 } };
      const v2 = await store.replace(v1, change);
      assert.deepEqual(v2, { ...v1, ...change, version: 2 });
      assert.deepEqual(await store.get('approval', 'r1'), v2);
      assert.equal(await store.replace(v1, { ...change, status: 'r-denied' }), undefined);
      assert.equal((await store.get('approval', 'r1'))?.status, 'r-granted');
      assert.deepEqual(await store.find('approval', { status: ['r-pending'] }), []);
      assert.deepEqual(await store.find('approval', { matchKey: 'r-old' }), []);
      assert.deepEqual(await store.find('approval', { status: ['r-granted'], matchKey: 'r-new' }), [v2]);
      assert.equal(await store.replace({ ...v1, id: 'r-gone' }, change), undefined, 'a missing record');
      assert.equal(await store.get('approval', 'r-gone'), undefined);
    });

    it('lets exactly one of twenty racing replaces of one version win', async () => {
      await store.insert(record('race'));
      const v1 = (await store.get('approval', 'race'))!;
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => store.replace(v1, { ...v1, status: `won-${i}`, body: { i } })),
      );
      const winners = results.filter((r) => r !== undefined);
      assert.equal(winners.length, 1);
      assert.deepEqual(await store.get('approval', 'race'), winners[0]);
    });

    it('lets exactly one replace win between two stores on the same database, each seeing the other', async () => {
      const other = openRecordStore(subject.config, dir);
      try {
        await store.insert(record('race2'));
        const v1 = (await other.get('approval', 'race2'))!;
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            (i % 2 ? store : other).replace(v1, { ...v1, status: `won-${i}`, body: { i } }),
          ),
        );
        const winners = results.filter((r) => r !== undefined);
        assert.equal(winners.length, 1);
        assert.deepEqual(await store.get('approval', 'race2'), winners[0]);
        assert.deepEqual(await other.get('approval', 'race2'), winners[0]);
      } finally {
        await other.close();
      }
    });

    it('lets exactly one win among replicas racing from their own threads and connections', async () => {
      await store.insert(record('race3'));
      const v1 = (await store.get('approval', 'race3'))!;
      const won = await raceInWorkers(subject.config, v1, 4);
      assert.equal(won.filter(Boolean).length, 1);
      const stored = await store.get('approval', 'race3');
      assert.equal(stored?.version, 2);
      assert.equal(stored?.status, `won-by-w${won.indexOf(true)}`);
    });

    it('purges records past their expiry, however many, and nothing else', async () => {
      const expired = Array.from({ length: 520 }, (_, i) =>
        record(`old-${i}`, { kind: 'nonce', status: 'seen', expiresAt: 100 + (i % 10) }),
      );
      for (let i = 0; i < expired.length; i += 20)
        await Promise.all(expired.slice(i, i + 20).map((r) => store.insert(r)));
      await store.insert(record('edge', { kind: 'nonce', status: 'seen', expiresAt: 200 }));
      assert.equal(await store.purgeExpired(200), 520);
      assert.equal(await store.purgeExpired(200), 0);
      assert.equal(await store.get('nonce', 'old-0'), undefined);
      assert.deepEqual(
        (await store.find('nonce', { status: ['seen'] })).map((r) => r.id),
        ['edge'],
      );
      assert.equal((await store.get('approval', 'r1'))?.version, 2, 'records of other tests are kept');
      assert.equal(await store.insert(record('old-0', { kind: 'nonce' })), true, 'a purged id is free again');
    });

    it('round-trips a body of nested JSON and unicode exactly', async () => {
      const body = {
        arguments: { path: '/tmp/ø/日本語/🙂', nested: [1, [2, [3, { deep: null }]], { e: -1.5e-7 }] },
        'key.with.dots': 'ok',
        text: 'e\u0301 \u200f\u05e9\u05dc\u05d5\u05dd \u0000 "quoted" \\ \n',
        lone: '\ud800',
        big: 2 ** 53 - 1,
        empty: {},
        none: [],
        flag: false,
      };
      await store.insert(record('body', { body, matchKey: 'ключ 🙂' }));
      const got = await store.get('approval', 'body');
      assert.deepEqual(got?.body, body);
      assert.deepEqual(await store.find('approval', { matchKey: 'ключ 🙂' }), [got]);
    });

    it('refuses a body over 64 KiB or an oversized key on insert and on replace, writing nothing', async () => {
      const huge = { blob: 'x'.repeat(MAX_BODY_BYTES) };
      await assert.rejects(store.insert(record('big', { body: huge })), {
        code: 'ERR_STATE_RECORD_TOO_LARGE',
      });
      await assert.rejects(store.insert(record('big', { matchKey: 'k'.repeat(MAX_KEY_BYTES + 1) })), {
        code: 'ERR_STATE_RECORD_TOO_LARGE',
      });
      assert.equal(await store.get('approval', 'big'), undefined);
      const fits = { blob: 'x'.repeat(MAX_BODY_BYTES - 20) };
      assert.equal(await store.insert(record('big', { body: fits })), true);
      const v1 = (await store.get('approval', 'big'))!;
      await assert.rejects(store.replace(v1, { ...v1, body: huge }), { code: 'ERR_STATE_RECORD_TOO_LARGE' });
      assert.deepEqual(await store.get('approval', 'big'), v1);
    });
  });
}

describe('a record store that cannot answer', () => {
  const calls = (store: RecordStore): (() => Promise<unknown>)[] => [
    () => store.insert(record('x')),
    () => store.get('approval', 'x'),
    () => store.getMany('approval', ['x']),
    () => store.find('approval', { status: ['pending'] }),
    () => store.replace({ ...record('x'), version: 1 }, record('x')),
    () => store.purgeExpired(1),
  ];

  // Nothing listens on port 1: the connection is refused at once, no timeout involved.
  for (const config of [
    { store: 'postgres', url: 'postgres://postgres@127.0.0.1:1/test', prefix: `rec${run}down` },
    { store: 'redis', url: 'redis://127.0.0.1:1', prefix: `test:rec:${run}:down:` },
  ] as const) {
    it(`fails every call with ERR_STATE_UNAVAILABLE when ${config.store} is down`, async () => {
      const store = openRecordStore(config, dir);
      try {
        for (const call of calls(store)) await assert.rejects(call(), { code: 'ERR_STATE_UNAVAILABLE' });
      } finally {
        await store.close();
      }
    });
  }

  it('refuses to open a SQLite file that cannot be created', () => {
    const notADir = join(dir, `file-${run}`);
    writeFileSync(notADir, '');
    assert.throws(() => new SqliteRecordStore(join(notADir, 'state.db')), { code: 'ERR_STATE_UNAVAILABLE' });
  });

  it('fails every call with ERR_STATE_UNAVAILABLE when its driver cannot load', async () => {
    let loads = 0;
    const store = new DeferredRecordStore(async () => {
      loads++;
      throw new Error('driver missing');
    });
    for (const call of calls(store)) await assert.rejects(call(), { code: 'ERR_STATE_UNAVAILABLE' });
    assert.equal(loads, 1);
    await store.close();
  });
});

describe('the record find limit', () => {
  it('defaults to 100 and holds a larger limit to 1000', () => {
    assert.equal(findLimit({}), 100);
    assert.equal(findLimit({ limit: 7 }), 7);
    assert.equal(findLimit({ limit: 5000 }), 1000);
    assert.throws(() => findLimit({ limit: 2.5 }), RangeError);
  });
});
