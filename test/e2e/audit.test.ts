import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { openCheckpoint } from '../../src/audit/checkpoint.ts';
import { canonicalize } from '../../src/audit/jcs.ts';
import { leafHash, treeRoot, verifyConsistency } from '../../src/audit/merkle.ts';
import { parseVerifierKey } from '../../src/audit/note.ts';
import { openAuditStore } from '../../src/audit/open.ts';
import { SqliteAuditStore } from '../../src/audit/store-sqlite.ts';
import { auditFixture, dropPgTables, type StoreKind } from '../audit/helpers.ts';
import {
  failsWith,
  hangUntilUpstreamTimeout,
  httpClient,
  initializeBody,
  PG_URL,
  post,
  probeUpstream,
  ROOT,
  runCli,
  startTestGateway,
  textOf,
} from '../helpers.ts';

const pgAdmin = new pg.Pool({ connectionString: PG_URL, max: 2 });
after(async () => {
  await pgAdmin.end();
  await dropPgTables();
});

const cli = runCli;

const records = async (f: ReturnType<typeof auditFixture>) => {
  const store = await openAuditStore(f.setup);
  try {
    const head = await store.head();
    return (await store.entries(0, head.size)).map(
      // biome-ignore lint/suspicious/noExplicitAny: records are read back as loose JSON
      (e) => JSON.parse(e.leaf.toString()) as Record<string, any>,
    );
  } finally {
    await store.close();
  }
};

describe('the audit log behind a running gateway', () => {
  it('records a decision before and an outcome after each call, linked, with keyed argument values', async () => {
    const f = auditFixture('sqlite');
    const gw = await startTestGateway({ upstreams: { probe: probeUpstream() }, audit: f.raw });
    const client = await httpClient(gw.listener.url, 'legacy');
    try {
      await client.listTools();
      const result = await client.callTool({ name: 'probe__echo', arguments: { text: 'top secret' } });
      assert.match(textOf(result), /top secret/);
    } finally {
      await client.close();
      await gw.close();
    }
    const all = await records(f);
    const decision = all.find((r) => r.type === 'decision' && r.tool === 'probe__echo')!;
    const outcome = all.find((r) => r.type === 'outcome' && r.callId === decision.callId)!;
    assert.equal(outcome.decisionIndex, all.indexOf(decision));
    assert.equal(outcome.status, 'ok');
    assert.equal(outcome.upstream, 'answered');
    // 'none' until a policy decides; with the policy stage in place, its allow.
    assert.ok(
      decision.decision === 'none' || decision.decision.effect === 'allow',
      JSON.stringify(decision.decision),
    );
    assert.equal(decision.principal.id, 'anonymous');
    assert.equal(
      decision.argsHash,
      createHash('sha256')
        .update(canonicalize({ text: 'top secret' }))
        .digest('hex'),
    );
    const key = Buffer.from(readFileSync(join(f.dir, 'hmac.key'), 'utf8').trim());
    const keyed = `hmac-sha256:${createHmac('sha256', key).update('"top secret"').digest('base64url')}`;
    assert.deepEqual(decision.args, { text: keyed });
    assert.ok(!JSON.stringify(all).includes('top secret'), 'argument values never stored in clear');
    assert.ok(
      all.some((r) => r.type === 'decision' && r.method === 'tools/list'),
      'lists are recorded too',
    );
    assert.ok(all.some((r) => r.type === 'decision' && r.method === 'initialize'));
  });

  it('records a call the upstream never answered as such: it may have acted all the same', async () => {
    const f = auditFixture('sqlite');
    // The call waits this long for an upstream that never answers: the time is what is tested, not a race.
    const timeoutMs = 4000;
    const gw = await startTestGateway({
      upstreams: { probe: probeUpstream({ timeoutMs }) },
      audit: f.raw,
    });
    const client = await httpClient(gw.listener.url, 'legacy');
    try {
      failsWith(-32002, /Upstream timed out/)(await hangUntilUpstreamTimeout(client));
    } finally {
      await client.close();
      await gw.close();
    }
    const outcome = (await records(f)).find((r) => r.type === 'outcome' && r.tool === 'probe__hang')!;
    assert.equal(outcome.status, 'error');
    assert.equal(outcome.upstream, 'no-answer');
    assert.equal(outcome.resultHash, null);
  });

  it('records a call the gateway refused, with its decision and its error code', async () => {
    const f = auditFixture('sqlite');
    const gw = await startTestGateway({ upstreams: { probe: probeUpstream() }, audit: f.raw });
    const client = await httpClient(gw.listener.url, 'modern');
    try {
      await assert.rejects(client.callTool({ name: 'nosuch__echo', arguments: {} }));
    } finally {
      await client.close();
      await gw.close();
    }
    const outcome = (await records(f)).find((r) => r.type === 'outcome' && r.tool === 'nosuch__echo')!;
    assert.equal(outcome.status, 'error');
    assert.equal(outcome.error, 'ERR_UNKNOWN_TARGET');
    assert.equal(outcome.upstream, null, 'never forwarded');
    const all = await records(f);
    const decision = all[outcome.decisionIndex]!;
    assert.equal(decision.type, 'decision');
    assert.equal(decision.callId, outcome.callId);
  });

  for (const kind of ['sqlite', 'postgres'] as const satisfies StoreKind[]) {
    it(`denies calls without forwarding them while ${kind} refuses writes, and loses nothing acknowledged`, async () => {
      const f = auditFixture(kind);
      const gw = await startTestGateway({ upstreams: { probe: probeUpstream() }, audit: f.raw });
      const client = await httpClient(gw.listener.url, 'legacy');
      const entries = kind === 'postgres' ? `${f.table}_entries` : 'audit_entries';
      const refuse = `CREATE TRIGGER refuse_writes BEFORE INSERT ON ${entries} ${
        kind === 'postgres'
          ? `FOR EACH ROW EXECUTE FUNCTION ${f.table}_refuse()`
          : "BEGIN SELECT RAISE(ABORT, 'disk refuses'); END"
      }`;
      const sql = async (s: string) => {
        if (kind === 'postgres') return void (await pgAdmin.query(s));
        const db = new SqliteAuditStore(f.setup.config.path);
        db.db.exec(s);
        await db.close();
      };
      try {
        const before = await client.callTool({ name: 'probe__pid', arguments: {} });
        const pid = textOf(before);
        await sql(refuse);
        await assert.rejects(
          client.callTool({ name: 'probe__echo', arguments: { text: 'must not pass' } }),
          (err: Error) => {
            assert.match(err.message, /Request denied/);
            return true;
          },
        );
        await sql(
          kind === 'postgres' ? `DROP TRIGGER refuse_writes ON ${entries}` : 'DROP TRIGGER refuse_writes',
        );
        const again = await client.callTool({ name: 'probe__pid', arguments: {} });
        assert.equal(textOf(again), pid);
      } finally {
        await client.close();
        await gw.close();
      }
      const all = await records(f);
      assert.ok(
        // Its pin's first-seen record names it too: that one came from the list, not the call.
        !all.some((r) => r.tool === 'probe__echo' && r.type !== 'tool-pin'),
        'the refused call left no record and was not forwarded',
      );
      assert.equal(all.filter((r) => r.type === 'decision' && r.tool === 'probe__pid').length, 2);
      const v = await cli(['audit', 'verify', '--config', f.configPath]);
      assert.equal(v.code, 0, v.stderr);
    });
  }

  it('denies every call when the audit store cannot be opened', async () => {
    const f = auditFixture('sqlite', { path: ROOT });
    const gw = await startTestGateway({
      upstreams: { probe: probeUpstream() },
      audit: { ...f.raw, path: ROOT },
    });
    try {
      const res = await post(gw.listener.url, initializeBody());
      const body = res.json as { error?: { message: string } };
      assert.equal(body.error?.message, 'Request denied');
    } finally {
      await gw.close();
    }
  });

  it('proves entries and consistency offline, exports tiles, tails and replays sessions', async () => {
    const f = auditFixture('sqlite');
    const gw = await startTestGateway({ upstreams: { probe: probeUpstream() }, audit: f.raw });
    const client = await httpClient(gw.listener.url, 'legacy');
    const call = (text: string) => client.callTool({ name: 'probe__echo', arguments: { text } });
    let old = '';
    try {
      await call('one');
      const cp = await cli(['audit', 'checkpoint', '--config', f.configPath]);
      assert.equal(cp.code, 0, cp.stderr);
      old = join(f.dir, 'old.checkpoint');
      writeFileSync(old, cp.stdout);
      await call('two');
      await call('three');
    } finally {
      await client.close();
      await gw.close();
    }
    const keys = await cli(['keys', '--config', f.configPath]);
    assert.equal(keys.code, 0, keys.stderr);
    const vkey = keys.stdout.trim();
    assert.match(vkey, /^test\.portcullis\/audit\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*$/);

    const proofDir = join(f.dir, 'receipt');
    assert.equal(
      (await cli(['audit', 'proof', '--config', f.configPath, '--index', '3', '--out', proofDir])).code,
      0,
    );
    const ok = await cli(['audit', 'verify-proof', proofDir, '--key', vkey]);
    assert.equal(ok.code, 0, ok.stderr);
    writeFileSync(join(proofDir, 'entry'), '{"forged":true}');
    const forged = await cli(['audit', 'verify-proof', proofDir, '--key', vkey]);
    assert.equal(forged.code, 1);
    assert.equal((await cli(['audit', 'verify-proof', proofDir])).code, 2);

    const consDir = join(f.dir, 'consistency');
    const cons = await cli([
      'audit',
      'consistency',
      '--config',
      f.configPath,
      '--old',
      old,
      '--out',
      consDir,
    ]);
    assert.equal(cons.code, 0, cons.stderr);
    const verifier = parseVerifierKey(vkey);
    const o = openCheckpoint(readFileSync(old, 'utf8'), verifier);
    const n = openCheckpoint(readFileSync(join(consDir, 'checkpoint'), 'utf8'), verifier);
    const proof = readFileSync(join(consDir, 'proof'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => Buffer.from(l, 'base64'));
    assert.ok(n.size > o.size);
    assert.equal(verifyConsistency(o.size, n.size, proof, o.root, n.root), true);

    const tilesDir = join(f.dir, 'tiles');
    assert.equal((await cli(['audit', 'export', '--config', f.configPath, '--tiles', tilesDir])).code, 0);
    const bundle = readFileSync(
      join(
        tilesDir,
        'tile/entries',
        readdirSync(join(tilesDir, 'tile/entries'))[0]!,
        readdirSync(join(tilesDir, 'tile/entries/000.p'))[0]!,
      ),
    );
    const leaves: Buffer[] = [];
    for (let at = 0; at < bundle.length; ) {
      const len = bundle.readUInt16BE(at);
      leaves.push(leafHash(bundle.subarray(at + 2, at + 2 + len)));
      at += 2 + len;
    }
    const exported = openCheckpoint(readFileSync(join(tilesDir, 'checkpoint'), 'utf8'), verifier);
    assert.equal(leaves.length, exported.size);
    assert.deepEqual(treeRoot(leaves), exported.root);
    const tile0 = readFileSync(join(tilesDir, `tile/0/000.p/${exported.size}`));
    assert.deepEqual(tile0, Buffer.concat(leaves));

    const tail = await cli([
      'audit',
      'tail',
      '--config',
      f.configPath,
      '--tool',
      'probe__echo',
      '--limit',
      '100',
    ]);
    const tailed = tail.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(tailed.filter((e) => e.record.type === 'decision').length, 3);
    assert.ok(tailed.every((e) => e.record.tool === 'probe__echo'));

    const session = tailed[0].record.session as string;
    const replay = await cli(['audit', 'replay', '--config', f.configPath, '--session', session, '--json']);
    assert.equal(replay.code, 0, replay.stderr);
    const replayed: { index: number; verified: boolean; record: { session: string } }[] = JSON.parse(
      replay.stdout,
    ).calls.flatMap((c: { entries: unknown[] }) => c.entries);
    assert.ok(replayed.length >= 6);
    assert.ok(replayed.every((e) => e.verified === true && e.record.session === session));
    const byPrincipal = await cli([
      'audit',
      'replay',
      '--config',
      f.configPath,
      '--principal',
      'anonymous',
      '--since',
      '1970-01-01T00:00:00Z',
    ]);
    assert.equal(byPrincipal.code, 0, byPrincipal.stderr);
    const denied = await cli(['audit', 'tail', '--config', f.configPath, '--decision', 'deny']);
    assert.equal(denied.stdout.trim(), '', 'no call was denied');
    assert.deepEqual(
      replayed.map((e) => e.index),
      [...replayed.map((e) => e.index)].sort((a, b) => a - b),
    );
  });
});
