import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import type { ApprovalEvent } from '../../src/approval/types.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { ServerPinAdmin } from '../../src/serverpin/admin.ts';
import { FileHasher } from '../../src/serverpin/digest.ts';
import { ServerPinEvents } from '../../src/serverpin/events.ts';
import { type PinnedLaunch, ServerPins } from '../../src/serverpin/service.ts';
import { ServerPinStore, serverPinOf } from '../../src/serverpin/store.ts';
import { openRecordStore } from '../../src/state/open.ts';
import type { RecordStore } from '../../src/state/records.ts';
import { failsWith, NODE, PG_URL } from '../helpers.ts';

const stores: RecordStore[] = [];
const prefixes: string[] = [];
after(async () => {
  await Promise.all(stores.map((s) => s.close().catch(() => {})));
  const c = new pg.Client(PG_URL);
  await c.connect();
  for (const p of prefixes) await c.query(`DROP TABLE IF EXISTS ${p}_records`);
  await c.end();
});

function sqliteStore(): RecordStore {
  const dir = mkdtempSync(join(tmpdir(), 'pc-serverpin-state-'));
  const store = openRecordStore({ store: 'sqlite', path: join(dir, 'state.db') }, dir);
  stores.push(store);
  return store;
}

/** A gateway's server pins over `store`, with what it journals and announces. */
function replica(store: RecordStore) {
  const journal: Record<string, unknown>[] = [];
  const alerts: ApprovalEvent[] = [];
  const events = new ServerPinEvents({
    journal: async (r) => journal.push(r),
    announcer: { announce: (e) => alerts.push(e) },
    log: silentLogger,
    now: Date.now,
    newId: () => randomBytes(4).toString('hex'),
  });
  const pinStore = new ServerPinStore(store);
  const pins = new ServerPins({
    store: pinStore,
    hasher: new FileHasher(),
    events,
    log: silentLogger,
    now: Date.now,
  });
  const admin = new ServerPinAdmin({ store: pinStore, pins, events, now: Date.now });
  return { pins, admin, pinStore, journal, alerts };
}

function scriptLaunch(extra: Partial<PinnedLaunch> = {}): PinnedLaunch & { script: string } {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'pc-serverpin-svc-')));
  const script = join(dir, 'server.js');
  writeFileSync(script, 'serve(1);\n');
  return {
    upstream: 'notes',
    command: NODE,
    args: [script],
    cwd: dir,
    env: { PATH: process.env.PATH },
    script,
    ...extra,
  };
}

describe('server pins', () => {
  it('pins on first use, refuses a changed script once alerted, keeps refusing after a revert, and starts again once approved', async () => {
    const r = replica(sqliteStore());
    const launch = scriptLaunch();
    const first = await r.pins.check(launch);
    assert.deepEqual([first.ok, first.source], [true, 'first-use']);
    assert.deepEqual(
      r.journal.map((e) => [e.type, e.event, e.upstream]),
      [['server-pin', 'first-use', 'notes']],
    );
    assert.deepEqual([(await r.pins.check(launch)).source], ['stored']);

    writeFileSync(launch.script, 'steal(1);\n');
    const refused = await r.pins.check(launch);
    assert.equal(refused.ok, false);
    assert.deepEqual(refused.ok ? [] : [refused.code, refused.reason], [
      'ERR_SERVER_PIN_MISMATCH',
      'script sha256',
    ]);
    await r.pins.check(launch);
    assert.deepEqual(
      r.alerts.map((a) => [a.type, a.data.upstream, a.data.code]),
      [['server.refused', 'notes', 'ERR_SERVER_PIN_MISMATCH']],
      'one alert for one refused fingerprint',
    );
    const stored = serverPinOf((await r.pinStore.get('notes'))!);
    assert.equal(stored.status, 'refused');
    assert.equal(stored.pending?.digest, refused.actual?.digest);

    writeFileSync(launch.script, 'serve(1);\n');
    const reverted = await r.pins.check(launch);
    assert.deepEqual(reverted.ok ? [] : [reverted.code, reverted.reason], [
      'ERR_SERVER_PIN_MISMATCH',
      'refused until approved',
    ]);

    const approved = await r.admin.approve(launch, 'operator:alice');
    assert.equal(approved.pin.status, 'pinned');
    assert.equal((await r.pins.check(launch)).ok, true);
    await assert.rejects(r.admin.approve(launch, 'operator:alice'), failsWith('ERR_SERVER_PIN_NOT_REFUSED'));
    assert.deepEqual(r.journal.at(-1)?.event, 'approved');
  });

  it('checks a config pin on what it names only, and leaves its changes to the config', async () => {
    const r = replica(sqliteStore());
    const base = scriptLaunch();
    const seen = (await r.pins.inspect(base)).actual;
    const script = seen.files.find((f) => f.role === 'script')!.sha256;
    assert.equal((await r.pins.check({ ...base, pin: { sha256: script } })).ok, true);
    const wrong = await r.pins.check({ ...base, pin: { sha256: '0'.repeat(64) } });
    assert.deepEqual(wrong.ok ? [] : [wrong.code, wrong.reason, wrong.source], [
      'ERR_SERVER_PIN_MISMATCH',
      'script sha256',
      'config',
    ]);
    const noPackage = await r.pins.check({
      ...base,
      pin: { package: { name: 'x', sha256: '0'.repeat(64) } },
    });
    assert.deepEqual(noPackage.ok ? [] : [noPackage.reason], ['no package']);
    assert.equal(await r.pinStore.get('notes'), undefined, 'a config pin writes nothing to the store');
    await assert.rejects(
      r.admin.pin({ ...base, pin: { sha256: script } }, 'operator:alice'),
      failsWith('ERR_SERVER_PIN_IN_CONFIG'),
    );
  });

  it('refuses what it cannot hash, and fails closed when the state store cannot answer', async () => {
    const store = sqliteStore();
    const r = replica(store);
    const missing = await r.pins.check(scriptLaunch({ command: 'no-such-server-command' }));
    assert.deepEqual(missing.ok ? [] : [missing.code], ['ERR_SERVER_UNVERIFIED']);
    assert.equal(r.alerts.length, 1);
    await store.close();
    const down = await r.pins.check(scriptLaunch());
    assert.deepEqual(down.ok ? [] : [down.code], ['ERR_STATE_UNAVAILABLE']);
  });

  it('lets replicas racing on a first start agree on one pin (PostgreSQL)', async () => {
    const prefix = `spin${randomBytes(4).toString('hex')}`;
    prefixes.push(prefix);
    const shared = () => {
      const s = openRecordStore({ store: 'postgres', url: PG_URL, prefix }, '.');
      stores.push(s);
      return s;
    };
    const [a, b] = [replica(shared()), replica(shared())];
    const launch = scriptLaunch();
    const verdicts = await Promise.all([a.pins.check(launch), b.pins.check(launch), a.pins.check(launch)]);
    assert.ok(verdicts.every((v) => v.ok));
    assert.deepEqual(verdicts.map((v) => v.source).sort(), ['first-use', 'stored', 'stored']);
    assert.equal([...a.journal, ...b.journal].filter((e) => e.event === 'first-use').length, 1);
  });
});
