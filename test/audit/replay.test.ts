import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { signCheckpoint } from '../../src/audit/checkpoint.ts';
import { canonicalize } from '../../src/audit/jcs.ts';
import { CompactRange, leafHash } from '../../src/audit/merkle.ts';
import { generateSignerKey, parseSignerKey } from '../../src/audit/note.ts';
import { auditSigner, openAuditStore } from '../../src/audit/open.ts';
import { parseSince, replayFilter, replayLog } from '../../src/audit/replay.ts';
import { callOf, type ReplayEntry } from '../../src/audit/replay-calls.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { httpClient, probeUpstream, runCli, startTestGateway } from '../helpers.ts';
import {
  attack,
  auditFixture,
  bytesLiteral,
  dropPgTables,
  item,
  ORIGIN,
  openTestLog,
  record,
  type StoreKind,
  tableOf,
} from './helpers.ts';

after(dropPgTables);

const otherKey = parseSignerKey(generateSignerKey(ORIGIN));

const POLICY = `
@id("allow-all")
permit(principal, action, resource);

@id("no-env")
forbid(principal, action == Action::"tools/call:probe__env", resource);
`;

// biome-ignore lint/suspicious/noExplicitAny: records and the report are read back as loose JSON
type Loose = Record<string, any>;

/** The stored entries of a log, read back as JSON with their index. */
async function entriesOf(f: ReturnType<typeof auditFixture>): Promise<{ index: number; record: Loose }[]> {
  const store = await openAuditStore(f.setup);
  try {
    const head = await store.head();
    return (await store.entries(0, head.size)).map((e) => ({
      index: e.index,
      record: JSON.parse(e.leaf.toString()),
    }));
  } finally {
    await store.close();
  }
}

/** A log written by a running gateway: one caller's session with a call policy denies, and another caller's call. */
async function recordSessions(kind: StoreKind) {
  const f = auditFixture(kind);
  const policy = join(f.dir, 'policy.cedar');
  writeFileSync(policy, POLICY);
  const gw = await startTestGateway({
    upstreams: { probe: probeUpstream() },
    audit: f.raw,
    policy: { files: [policy] },
  });
  const a = await httpClient(gw.listener.url, 'legacy');
  const b = await httpClient(gw.listener.url, 'legacy');
  try {
    await a.callTool({ name: 'probe__echo', arguments: { text: 'one' } });
    await assert.rejects(a.callTool({ name: 'probe__env', arguments: {} }));
    await b.callTool({ name: 'probe__echo', arguments: { text: 'elsewhere' } });
    await a.callTool({ name: 'probe__echo', arguments: { text: 'two' } });
  } finally {
    await a.close();
    await b.close();
    await gw.close();
  }
  const entries = await entriesOf(f);
  const denied = entries.find((e) => e.record.type === 'decision' && e.record.tool === 'probe__env')!;
  return { ...f, entries, denied, session: denied.record.session as string };
}

const replay = (configPath: string, ...args: string[]) =>
  runCli(['audit', 'replay', '--config', configPath, ...args]);

const argsHash = (args: unknown): string => createHash('sha256').update(canonicalize(args)).digest('hex');

const allEntries = (report: Loose): Loose[] => report.calls.flatMap((c: Loose) => c.entries);

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`audit replay of a gateway's log on ${kind}`, () => {
    it("shows a session's calls in log order with their decisions, arguments and outcomes, every entry proven against the checkpoint", async () => {
      const f = await recordSessions(kind);
      const r = await replay(f.configPath, '--session', f.session, '--json');
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout);
      assert.equal(report.ok, true);
      assert.deepEqual(report.tampered, []);
      const calls = report.calls.filter((c: Loose) => c.method === 'tools/call');
      assert.deepEqual(
        calls.map((c: Loose) => [
          c.tool,
          c.principal,
          c.decision.effect,
          c.decision.determiningPolicies,
          c.outcome.status,
          c.outcome.error,
          c.outcome.upstream,
          c.args.hash,
        ]),
        [
          [
            'probe__echo',
            'anonymous',
            'allow',
            ['allow-all'],
            'ok',
            null,
            'answered',
            argsHash({ text: 'one' }),
          ],
          // A tool policy hides answers like a missing one.
          ['probe__env', 'anonymous', 'deny', ['no-env'], 'error', 'ERR_UNKNOWN_TARGET', null, argsHash({})],
          [
            'probe__echo',
            'anonymous',
            'allow',
            ['allow-all'],
            'ok',
            null,
            'answered',
            argsHash({ text: 'two' }),
          ],
        ],
      );
      assert.match(calls[0].args.stored.text, /^hmac-sha256:/, 'argument values stay keyed hashes');
      assert.equal(calls[0].args.clear, false);
      for (const c of calls) {
        assert.deepEqual(
          c.entries.map((e: Loose) => e.type),
          ['decision', 'outcome'],
        );
        assert.equal(c.entries[1].record.decisionIndex, c.entries[0].index, 'the outcome links its decision');
      }
      const firsts = report.calls.map((c: Loose) => c.entries[0].index);
      assert.deepEqual(
        firsts,
        [...firsts].sort((x: number, y: number) => x - y),
        'calls in log order',
      );
      const shown = allEntries(report);
      assert.ok(shown.every((e) => e.verified === true && e.record.session === f.session));
      assert.ok(
        !shown.some((e) => e.record.argsHash === argsHash({ text: 'elsewhere' })),
        'only this session',
      );
      assert.equal(report.verified, shown.length);
      assert.equal(report.entries, shown.length);
      assert.deepEqual(report.checkpoint.size, f.entries.length);
      assert.equal(report.logSize, f.entries.length);

      const text = await replay(f.configPath, '--session', f.session);
      assert.equal(text.code, 0, text.stderr);
      assert.ok(
        text.stdout.includes(
          `verified: ${report.verified} entries against checkpoint ${report.checkpoint.size} ${report.checkpoint.root}\n`,
        ),
        text.stdout,
      );
      assert.match(text.stdout, /tools\/call probe__env\n.*\n {2}decision {2}deny {2}policies no-env/);
    });

    it('reports a decision rewritten in the store as tampered, naming its entry, and exits 1', async () => {
      const f = await recordSessions(kind);
      const { index, record: original } = f.denied;
      // The attacker turns the denial into an allow, and keeps the column in step with the leaf.
      const forged = { ...original, decision: { ...original.decision, effect: 'allow' } };
      const leaf = bytesLiteral(kind, Buffer.from(canonicalize(forged)));
      await attack(kind, f.setup, [
        `UPDATE ${tableOf(kind, f.setup, 'entries')} SET leaf = ${leaf}, decision = 'allow' WHERE idx = ${index}`,
      ]);
      const r = await replay(f.configPath, '--session', f.session, '--json');
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^portcullis: \\[ERR_AUDIT_TAMPERED\\] entry ${index}: `));
      const report = JSON.parse(r.stdout);
      assert.equal(report.ok, false);
      assert.equal(report.error.code, 'ERR_AUDIT_TAMPERED');
      assert.deepEqual(report.error.detail, { index, code: 'entry-changed' });
      assert.deepEqual(
        report.tampered.map((t: Loose) => [t.index, t.code]),
        [[index, 'entry-changed']],
      );
      const shown = allEntries(report).find((e) => e.index === index)!;
      assert.equal(shown.verified, false);
      assert.equal(shown.record.decision.effect, 'allow', 'shown as stored, and marked');
      assert.deepEqual(
        shown.problems.map((p: Loose) => p.code),
        ['entry-changed'],
      );

      const text = await replay(f.configPath, '--session', f.session);
      assert.equal(text.code, 1);
      assert.match(text.stdout, new RegExp(`\\n {2}#${index} decision {2}NOT VERIFIED: entry-changed`));
      assert.match(text.stdout, new RegExp(`\\nTAMPERED: entry ${index} \\(entry-changed\\)`));
    });

    it('reports a column changed beside an intact entry as tampered and still proves every other entry', async () => {
      const f = await recordSessions(kind);
      const outcome = f.entries.find(
        (e) =>
          e.record.type === 'outcome' && e.record.session === f.session && e.record.tool === 'probe__echo',
      )!;
      await attack(kind, f.setup, [
        `UPDATE ${tableOf(kind, f.setup, 'entries')} SET principal = 'mallory' WHERE idx = ${outcome.index}`,
      ]);
      const r = await replay(f.configPath, '--session', f.session, '--json');
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`\\[ERR_AUDIT_TAMPERED\\] entry ${outcome.index}: column principal`));
      const report = JSON.parse(r.stdout);
      assert.deepEqual(
        report.tampered.map((t: Loose) => [t.index, t.code, t.column]),
        [[outcome.index, 'column-changed', 'principal']],
      );
      assert.equal(report.verified, report.entries - 1);
      assert.deepEqual(
        allEntries(report)
          .filter((e) => !e.verified)
          .map((e) => e.index),
        [outcome.index],
      );
    });

    it('selects by principal and time, combined, and needs at least one of session, principal and time', async () => {
      const f = await recordSessions(kind);
      const all = await replay(f.configPath, '--principal', 'anonymous', '--since', '1h', '--json');
      assert.equal(all.code, 0, all.stderr);
      const shown = allEntries(JSON.parse(all.stdout));
      assert.ok(
        shown.some((e) => e.record.argsHash === argsHash({ text: 'elsewhere' })),
        'both sessions',
      );
      // Everything the caller did; the gateway's own records (a server pinned on first use, the policy set) name no caller.
      const callers = f.entries.filter((e) => (e.record.principal as Loose)?.id === 'anonymous');
      const others = f.entries.filter((e) => !callers.includes(e)).map((e) => e.record.type);
      assert.ok(
        others.every((t) => t === 'server-pin' || t === 'upstream-start' || t === 'policy-set'),
        others.join(),
      );
      assert.equal(shown.length, callers.length);
      const future = await replay(f.configPath, '--since', '2999-01-01T00:00:00Z', '--json');
      assert.equal(future.code, 0, future.stderr);
      assert.deepEqual(JSON.parse(future.stdout).calls, []);
      const none = await replay(f.configPath, '--json');
      assert.equal(none.code, 2);
      assert.match(none.stderr, /--session ID, --principal P or --since T is required/);
    });
  });
}

describe('audit replay of a log changed in the store', () => {
  /** Forty decision records in sessions s0..s2, a checkpoint every eight. */
  async function build() {
    const f = auditFixture('sqlite');
    const { log } = await openTestLog(f.setup, {
      checkpointEveryEntries: 8,
      groupCommit: false,
      maxBatch: 1,
    });
    for (let i = 0; i < 40; i++) await log.append(item(i, { session: `s${i % 3}` }));
    await log.close();
    return f;
  }

  const run = async (f: ReturnType<typeof auditFixture>, session: string) => {
    const store = await openAuditStore(f.setup);
    try {
      return await replayLog(store, auditSigner(f.setup, silentLogger), { session });
    } finally {
      await store.close();
    }
  };

  it('narrows a rewritten entry down to the checkpoints around it', async () => {
    const f = await build();
    const leaf = bytesLiteral(
      'sqlite',
      Buffer.from(canonicalize({ ...record(13, { session: 's1' }), n: 999 })),
    );
    await attack('sqlite', f.setup, [`UPDATE audit_entries SET leaf = ${leaf} WHERE idx = 13`]);
    await attack('sqlite', f.setup, rootsRebuilt(await entriesOf(f)));
    const report = await run(f, 's1');
    assert.deepEqual(
      report.tampered.map((t) => [t.index, t.code]),
      [[8, 'history-differs']],
    );
    assert.match(report.tampered[0]!.reason, /entries 8\.\.15 differ from the ones signed in checkpoint 16/);
    assert.equal(report.verified, 0, 'nothing is provable against a tree the store no longer makes');
  });

  it('refuses a latest checkpoint that the key of the log did not sign', async () => {
    const f = await build();
    const forged = signCheckpoint({ origin: ORIGIN, size: 40, root: Buffer.alloc(32) }, otherKey);
    await attack('sqlite', f.setup, [`UPDATE audit_checkpoints SET note = '${forged}' WHERE size = 40`]);
    await assert.rejects(run(f, 's1'), { code: 'ERR_AUDIT_SIGNATURE_INVALID' });
  });

  it('names an entry deleted from the store', async () => {
    const f = await build();
    await attack('sqlite', f.setup, ['DELETE FROM audit_entries WHERE idx = 21']);
    const report = await run(f, 's0');
    assert.deepEqual(
      report.tampered.map((t) => [t.index, t.code]),
      [[21, 'entry-missing']],
    );
    assert.equal(report.verified, 0);
  });
});

describe('audit replay of a log that grew past its last checkpoint', () => {
  /** Twenty entries under signed checkpoints, then four the writer appended but did not sign yet. */
  async function build() {
    const f = auditFixture('sqlite');
    const { log } = await openTestLog(f.setup, {
      checkpointEveryEntries: 8,
      groupCommit: false,
      maxBatch: 1,
    });
    for (let i = 0; i < 20; i++) await log.append(item(i, { session: `s${i % 2}` }));
    await log.close();
    const store = await openAuditStore(f.setup);
    await store.append([20, 21, 22, 23].map((i) => item(i, { session: `s${i % 2}` })));
    await store.close();
    return f;
  }

  it('signs the head first, so the new entries are proven too', async () => {
    const f = await build();
    const r = await replay(f.configPath, '--session', 's1', '--json');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.checkpoint.size, 24);
    assert.deepEqual(
      allEntries(report).map((e) => [e.index, e.verified]),
      [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23].map((i) => [i, true]),
    );
  });

  it('with a verifier key alone, signs nothing and says which entries it did not replay', async () => {
    const f = await build();
    const keys = await runCli(['keys', '--config', f.configPath]);
    assert.equal(keys.code, 0, keys.stderr);
    const r = await replay(f.configPath, '--session', 's1', '--key', keys.stdout.trim());
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\nverified: 10 entries against checkpoint 20 /);
    assert.match(r.stdout, /\nnot replayed: entries 20\.\.23, past the checkpoint\n/);
  });

  it('refuses to sign a head that no longer extends the last checkpoint, and fails after proving what it can', async () => {
    const f = await build();
    const leaf = bytesLiteral(
      'sqlite',
      Buffer.from(canonicalize({ ...record(21, { session: 's1' }), n: 999 })),
    );
    await attack('sqlite', f.setup, [`UPDATE audit_entries SET leaf = ${leaf} WHERE idx = 21`]);
    const r = await replay(f.configPath, '--session', 's1', '--json');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\[ERR_AUDIT_INCONSISTENT\] tree of size 24 does not extend checkpoint 20/);
    const report = JSON.parse(r.stdout);
    assert.equal(report.ok, false);
    assert.equal(report.error.code, 'ERR_AUDIT_INCONSISTENT');
    assert.equal(report.checkpoint.size, 20);
    assert.equal(report.verified, 10);
    const store = await openAuditStore(f.setup);
    const sizes = (await store.checkpoints().finally(() => store.close())).map((c) => c.size);
    assert.deepEqual(sizes, [8, 16, 20], 'nothing signed over the changed entry');
  });
});

/** What an attacker who rewrote an entry does next: each entry's stored root, and the head, recomputed. */
function rootsRebuilt(entries: { index: number; record: Loose }[]): string[] {
  const range = new CompactRange();
  const statements = entries.map(({ index, record: r }) => {
    range.append(leafHash(Buffer.from(canonicalize(r))));
    return `UPDATE audit_entries SET root_after = X'${range.root().toString('hex')}' WHERE idx = ${index}`;
  });
  return [...statements, `UPDATE audit_head SET root = X'${range.root().toString('hex')}' WHERE id = 1`];
}

describe('the replay filter', () => {
  const now = Date.parse('2026-05-01T12:00:00Z');

  it('reads --since as a time ago, an ISO-8601 time or milliseconds since the epoch', () => {
    assert.equal(parseSince('15m', now), now - 15 * 60_000);
    assert.equal(parseSince('2h', now), now - 2 * 3_600_000);
    assert.equal(parseSince('7d', now), now - 7 * 86_400_000);
    assert.equal(parseSince('2026-05-01T09:30:00Z', now), Date.parse('2026-05-01T09:30:00Z'));
    assert.equal(parseSince('1700000000000', now), 1_700_000_000_000);
  });

  it('refuses a --since it cannot read, and a replay of nothing in particular', () => {
    for (const bad of ['yesterday', '15 m', '-5m', 'May 1']) {
      assert.throws(() => parseSince(bad, now), { code: 'ERR_USAGE' }, bad);
    }
    assert.throws(() => replayFilter({}, now), { code: 'ERR_USAGE' });
    assert.deepEqual(replayFilter({ principal: 'alice', since: '1h' }, now), {
      principal: 'alice',
      since: now - 3_600_000,
    });
  });
});

describe('a replayed call', () => {
  const entry = (index: number, r: Loose): ReplayEntry => ({
    index,
    type: r.type,
    record: r,
    verified: true,
    problems: [],
  });

  it('gathers every record naming the call under it, approvals included, and reads its approval from them', () => {
    const base = { callId: 'c1', session: 's', tool: 'fs__write', principal: { id: 'alice' } };
    const call = callOf('c1', [
      entry(4, {
        ...base,
        type: 'decision',
        time: 10,
        method: 'tools/call',
        approvalId: null,
        decision: 'none',
      }),
      entry(6, { type: 'approval.granted', time: 11, callId: 'c1', decisionIndex: 4, approvalId: 'ap-1' }),
      entry(9, { ...base, type: 'outcome', time: 12, decisionIndex: 4, status: 'ok', upstream: 'answered' }),
    ]);
    assert.deepEqual(
      call.entries.map((e) => e.type),
      ['decision', 'approval.granted', 'outcome'],
    );
    assert.equal(call.approvalId, 'ap-1');
    assert.equal(call.breakGlassId, null);
    assert.deepEqual(call.decision, {
      effect: 'none',
      determiningPolicies: [],
      obligations: [],
      policySetHash: null,
    });
    assert.equal(call.outcome?.upstream, 'answered');
    assert.equal(call.principal, 'alice');
  });
});
