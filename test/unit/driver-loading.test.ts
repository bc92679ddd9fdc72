import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';

import pg from 'pg';
import { NODE, PG_URL, REDIS_URL, ROOT } from '../helpers.ts';

const run = promisify(execFile);
const dirs: string[] = [];
const unique = () => `drv_${process.pid}_${randomBytes(4).toString('hex')}`;

/** The drivers a gateway in a fresh process loaded while starting and answering one call. */
async function driversLoaded(config: Record<string, unknown>): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-drivers-'));
  dirs.push(dir);
  const { stdout } = await run(NODE, [
    join(ROOT, 'test/fixtures/driver-probe.ts'),
    JSON.stringify(config),
    dir,
  ]);
  const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as { status: number; drivers: string[] };
  assert.equal(out.status, 200, 'the probe call was answered');
  return out.drivers;
}

describe('storage drivers load only for the store kind configured', () => {
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('a gateway in SQLite mode loads neither pg nor ioredis', async () => {
    assert.deepEqual(await driversLoaded({}), []);
  });

  it('a gateway with PostgreSQL audit and revocations loads pg and not ioredis', async () => {
    const name = unique();
    const drivers = await driversLoaded({
      audit: { store: 'postgres', url: PG_URL, table: name },
      state: { store: 'postgres', url: PG_URL, prefix: name },
    });
    assert.deepEqual(drivers, ['pg']);
  });

  it('a gateway with Redis revocations and a SQLite audit log loads ioredis and not pg', async () => {
    const drivers = await driversLoaded({
      state: { store: 'redis', url: 'redis://127.0.0.1:6379', prefix: `${unique()}:` },
    });
    assert.deepEqual(drivers, ['ioredis']);
  });
});

/** The drivers a fresh process loaded while opening the record store for `state` and using it once. */
async function recordDriversLoaded(state: Record<string, unknown>): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-record-drivers-'));
  dirs.push(dir);
  const { stdout } = await run(NODE, [
    join(ROOT, 'test/fixtures/record-driver-probe.ts'),
    JSON.stringify(state),
    dir,
  ]);
  const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as { found: boolean; drivers: string[] };
  assert.equal(out.found, true, 'the probe record was written and read back');
  return out.drivers;
}

describe('the record store loads only the driver of the store kind configured', () => {
  it('in SQLite mode it loads neither pg nor ioredis', async () => {
    assert.deepEqual(await recordDriversLoaded({ store: 'sqlite', path: 'state.db' }), []);
  });

  it('on PostgreSQL it loads pg and not ioredis', async () => {
    const prefix = unique();
    try {
      assert.deepEqual(await recordDriversLoaded({ store: 'postgres', url: PG_URL, prefix }), ['pg']);
    } finally {
      const c = new pg.Client(PG_URL);
      await c.connect();
      await c.query(`DROP TABLE IF EXISTS ${prefix}_records`);
      await c.end();
    }
  });

  it('on Redis it loads ioredis and not pg', async () => {
    const prefix = `${unique()}:`;
    assert.deepEqual(await recordDriversLoaded({ store: 'redis', url: REDIS_URL, prefix }), ['ioredis']);
  });
});
