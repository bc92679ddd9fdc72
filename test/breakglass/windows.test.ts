import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ApproverAct } from '../../src/approval/types.ts';
import { USE_ALERT_MS } from '../../src/breakglass/guard.ts';
import type { Principal } from '../../src/identity/principal.ts';
import { SqliteRecordStore } from '../../src/state/records-sqlite.ts';
import { failsWith } from '../helpers.ts';
import { breakGlassWith } from './fixtures.ts';

const T0 = Date.UTC(2026, 10, 24, 10, 0, 0);
const TTL = 15 * 60_000;
const carol: Principal = {
  id: 'p_carol',
  authMethod: 'gateway-token',
  user: 'carol',
  scopes: [],
  claims: {},
};
const write = { principal: carol, upstream: 'fs', tool: 'fs__write_file' };

/** A guard on a fresh SQLite state store, its clock moved by the test. */
function setUp() {
  let now = T0;
  const store = new SqliteRecordStore(':memory:');
  const bg = breakGlassWith(store, { now: () => now });
  const act = (name: string, comment = ''): ApproverAct => ({
    approver: `operator:${name}`,
    channel: 'cli',
    comment,
    at: now,
  });
  const request = (scope = 'tool:fs__write_*', ttlMs = TTL) =>
    bg.guard.windows.request({
      scope,
      ttlMs,
      reason: 'policy engine down, incident 42',
      by: 'operator:alice',
    });
  const open = async (scope?: string, ttlMs?: number) => {
    const w = await request(scope, ttlMs);
    await bg.guard.windows.approve(w.id, act('bob'));
    return bg.guard.windows.approve(w.id, act('dave'));
  };
  return { ...bg, store, act, request, open, tick: (ms: number) => (now += ms), at: () => now };
}

describe('break-glass windows', () => {
  it('stay requested, covering nothing, with one approval; the second opens the window for its ttl', async () => {
    const s = setUp();
    const w = await s.request();
    assert.equal(w.status, 'requested');
    assert.equal(w.expiresAt, T0 + 600_000, 'a request expires after approvals.breakGlass.requestTtlMs');
    const once = await s.guard.windows.approve(w.id, s.act('bob', 'confirmed by phone'));
    assert.equal(once.status, 'requested');
    assert.equal(s.guard.cover(write), undefined);
    s.tick(1000);
    const opened = await s.guard.windows.approve(w.id, s.act('dave'));
    assert.equal(opened.status, 'open');
    assert.equal(opened.expiresAt, T0 + 1000 + TTL);
    assert.equal(s.guard.cover(write)?.id, w.id, 'in force at once in the process that opened it');
    assert.deepEqual(s.events(), ['requested', 'approved', 'opened']);
    assert.deepEqual(s.records.at(-1)?.approvers, ['operator:bob', 'operator:dave']);
    assert.deepEqual(
      s.announced.map((e) => e.type),
      ['breakglass.requested', 'breakglass.opened'],
    );
    const alerts = s.lines.filter((l) => l.level === 'warn' && l.fields.alert === true).map((l) => l.msg);
    assert.deepEqual(alerts, [
      'break-glass requested',
      'break-glass approved',
      'break-glass window in force',
      'break-glass opened',
    ]);
  });

  it('refuses the requester as an approver, the same approver twice, and unknown ids, each recorded with its code', async () => {
    const s = setUp();
    const w = await s.request();
    await assert.rejects(s.guard.windows.approve(w.id, s.act('alice')), failsWith('ERR_BREAKGLASS_SELF'));
    await s.guard.windows.approve(w.id, s.act('bob'));
    await assert.rejects(s.guard.windows.approve(w.id, s.act('bob')), failsWith('ERR_APPROVAL_DUPLICATE'));
    await assert.rejects(
      s.guard.windows.approve('bg_nosuch', s.act('bob')),
      failsWith('ERR_BREAKGLASS_UNKNOWN'),
    );
    await assert.rejects(
      s.guard.windows.close('bg_nosuch', s.act('bob')),
      failsWith('ERR_BREAKGLASS_UNKNOWN'),
    );
    assert.equal((await s.guard.windows.get(w.id))?.status, 'requested');
    const refused = s.records.filter((r) => r.event === 'refused');
    assert.deepEqual(
      refused.map((r) => [r.code, r.approver]),
      [
        ['ERR_BREAKGLASS_SELF', 'operator:alice'],
        ['ERR_APPROVAL_DUPLICATE', 'operator:bob'],
        ['ERR_BREAKGLASS_UNKNOWN', 'operator:bob'],
        ['ERR_BREAKGLASS_UNKNOWN', 'operator:bob'],
      ],
    );
  });

  it('refuses a ttl under a second or over approvals.breakGlass.maxTtlMs, and a scope that does not parse', async () => {
    const s = setUp();
    await assert.rejects(s.request('tool:fs__write_file', 3_600_001), failsWith('ERR_BREAKGLASS_TTL'));
    await assert.rejects(s.request('tool:fs__write_file', 999), failsWith('ERR_BREAKGLASS_TTL'));
    await assert.rejects(s.request('upstream:nosuch'), failsWith('ERR_BREAKGLASS_SCOPE'));
    await assert.rejects(s.request('principal:user:carol'), failsWith('ERR_BREAKGLASS_SCOPE'));
    assert.deepEqual(s.events(), []);
  });

  it('refuses approving a window no longer awaiting approval, and closing one that ended', async () => {
    const s = setUp();
    const w = await s.open();
    await assert.rejects(
      s.guard.windows.approve(w.id, s.act('erin')),
      failsWith('ERR_BREAKGLASS_NOT_PENDING'),
    );
    await s.guard.windows.close(w.id, s.act('bob'));
    await assert.rejects(s.guard.windows.close(w.id, s.act('bob')), failsWith('ERR_BREAKGLASS_ENDED'));
  });

  it('ends at its expiry by the clock, and the next read records it expired and announces it closed', async () => {
    const s = setUp();
    const w = await s.open('tool:fs__write_*', 60_000);
    s.tick(59_999);
    assert.equal(s.guard.cover(write)?.id, w.id);
    s.tick(1);
    assert.equal(s.guard.cover(write), undefined, 'no longer in force, before any read of the store');
    await s.guard.refresh();
    assert.equal((await s.guard.windows.get(w.id))?.status, 'expired');
    assert.equal(s.events().at(-1), 'expired');
    assert.equal(s.announced.at(-1)?.type, 'breakglass.closed');
    assert.equal(s.announced.at(-1)?.data.status, 'expired');
    await s.guard.refresh();
    assert.equal(s.events().filter((e) => e === 'expired').length, 1, 'recorded once');
  });

  it('lets a request nobody approved in time expire; it can no longer be approved', async () => {
    const s = setUp();
    const w = await s.request();
    s.tick(600_000);
    await assert.rejects(
      s.guard.windows.approve(w.id, s.act('bob')),
      failsWith('ERR_BREAKGLASS_NOT_PENDING'),
    );
    await s.guard.refresh();
    assert.equal((await s.guard.windows.get(w.id))?.status, 'expired');
  });

  it('closes at once on close, by any operator, with the comment recorded and announced', async () => {
    const s = setUp();
    const w = await s.open();
    const closed = await s.guard.windows.close(w.id, s.act('alice', 'engine back'));
    assert.equal(closed.status, 'closed');
    assert.equal(closed.closedBy, 'operator:alice');
    assert.equal(s.guard.cover(write), undefined);
    assert.deepEqual(s.records.at(-1), { ...s.records.at(-1), event: 'closed', comment: 'engine back' });
    assert.equal(s.announced.at(-1)?.type, 'breakglass.closed');
  });

  it('refuses a request closed before it opened: it can no longer be approved', async () => {
    const s = setUp();
    const w = await s.request();
    assert.equal((await s.guard.windows.close(w.id, s.act('bob', 'not needed'))).status, 'refused');
    await assert.rejects(
      s.guard.windows.approve(w.id, s.act('dave')),
      failsWith('ERR_BREAKGLASS_NOT_PENDING'),
    );
  });

  it('is seen by another gateway on the same state store at its next read, and its close too', async () => {
    const s = setUp();
    const other = breakGlassWith(s.store, { now: s.at });
    const w = await s.open();
    assert.equal(other.guard.cover(write), undefined);
    await other.guard.refresh();
    assert.equal(other.guard.cover(write)?.id, w.id);
    assert.ok(other.lines.some((l) => l.msg === 'break-glass window in force' && l.fields.alert === true));
    await s.guard.windows.close(w.id, s.act('bob'));
    await other.guard.refresh();
    assert.equal(other.guard.cover(write), undefined);
  });

  it('stays in force while the state store cannot answer, until its own expiry', async () => {
    const s = setUp();
    const w = await s.open('tool:fs__write_*', 60_000);
    await s.store.close();
    await s.guard.refresh();
    assert.equal(s.guard.cover(write)?.id, w.id);
    assert.ok(s.lines.some((l) => l.level === 'warn' && /not read/.test(l.msg)));
    s.tick(60_000);
    assert.equal(s.guard.cover(write), undefined);
  });

  it('does not open a window whose opening cannot be recorded in the audit log', async () => {
    const s = setUp();
    const w = await s.request();
    await s.guard.windows.approve(w.id, s.act('bob'));
    s.failJournal(true);
    await assert.rejects(s.guard.windows.approve(w.id, s.act('dave')), /audit log down/);
    const stored = await s.guard.windows.get(w.id);
    assert.equal(stored?.status, 'requested');
    assert.deepEqual(
      stored?.approvers.map((a) => a.approver),
      ['operator:bob'],
    );
    assert.equal(s.guard.cover(write), undefined);
    s.failJournal(false);
    assert.equal((await s.guard.windows.approve(w.id, s.act('dave'))).status, 'open');
  });

  it('ignores a window marked open behind its back without two approvers or beyond the longest ttl', async () => {
    const s = setUp();
    const forged = (id: string, approvers: string[], ttlMs = TTL) => ({
      kind: 'breakglass' as const,
      id,
      status: 'open',
      matchKey: '',
      createdAt: T0,
      expiresAt: T0 + ttlMs,
      body: {
        id,
        status: 'open',
        scope: 'tool:fs__write_file',
        reason: 'r',
        openedBy: 'operator:alice',
        approvers: approvers.map((a) => ({ approver: a, channel: 'cli', comment: '', at: T0 })),
        ttlMs,
        requestedAt: T0,
        openedAt: T0,
        expiresAt: T0 + ttlMs,
      },
    });
    await s.store.insert(forged('bg_one', ['operator:bob']));
    await s.store.insert(forged('bg_self', ['operator:alice', 'operator:bob']));
    await s.store.insert(forged('bg_twice', ['operator:bob', 'operator:bob']));
    await s.store.insert(forged('bg_long', ['operator:bob', 'operator:dave'], 3_600_001));
    await s.guard.refresh();
    await s.guard.refresh();
    assert.equal(s.guard.cover(write), undefined);
    const ignored = s.lines
      .filter((l) => l.msg === 'break-glass window ignored')
      .map((l) => l.fields.breakGlassId);
    assert.deepEqual(ignored.sort(), ['bg_long', 'bg_one', 'bg_self', 'bg_twice'], 'each logged once');
  });

  it('never covers a caller nobody authenticated, nor one its principal terms do not name', async () => {
    const s = setUp();
    await s.open('tool:fs__write_*,principal:user:carol');
    assert.ok(s.guard.cover(write));
    assert.equal(s.guard.cover({ ...write, principal: { ...carol, authMethod: 'none' } }), undefined);
    assert.equal(s.guard.cover({ ...write, principal: { ...carol, id: 'p_dan', user: 'dan' } }), undefined);
    assert.equal(s.guard.cover({ ...write, tool: 'fs__read_text_file' }), undefined);
  });

  it('alerts a use at most once a second per window, counting the uses in between, each alert also recorded', async () => {
    const s = setUp();
    const w = await s.open();
    const use = (n: number) => ({
      callId: `c${n}`,
      session: 's1',
      tool: 'fs__write_file',
      principal: carol.id,
    });
    s.guard.used(w.id, use(1));
    s.guard.used(w.id, use(2));
    s.guard.used(w.id, use(3));
    s.tick(USE_ALERT_MS);
    s.guard.used(w.id, use(4));
    const used = s.announced.filter((e) => e.type === 'breakglass.used');
    assert.deepEqual(
      used.map((e) => [e.data.callId, e.data.uses]),
      [
        ['c1', 1],
        ['c4', 3],
      ],
    );
    await s.guard.refresh();
    const records = s.records.filter((r) => r.event === 'used');
    assert.deepEqual(
      records.map((r) => [r.callId, r.breakGlassId, r.tool, (r.principal as { id: string }).id]),
      [
        ['c1', w.id, 'fs__write_file', carol.id],
        ['c4', w.id, 'fs__write_file', carol.id],
      ],
    );
  });
});
