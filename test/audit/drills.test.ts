import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { openCheckpoint, signCheckpoint } from '../../src/audit/checkpoint.ts';
import { canonicalize } from '../../src/audit/jcs.ts';
import { CompactRange, leafHash } from '../../src/audit/merkle.ts';
import { generateSignerKey, parseSignerKey } from '../../src/audit/note.ts';
import { type AuditSetup, auditSigner, openAuditStore } from '../../src/audit/open.ts';
import { encodeRange } from '../../src/audit/store.ts';
import { verifyLog } from '../../src/audit/verify.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { NODE, probeUpstream, ROOT, runCli } from '../helpers.ts';
import {
  attack,
  auditFixture,
  dropPgTables,
  item,
  ORIGIN,
  openTestLog,
  record,
  type StoreKind,
} from './helpers.ts';

after(dropPgTables);

const run = runCli;

/** Builds a log of `n` entries with stored checkpoints and keeps its latest checkpoint in a file outside the database. */
async function build(kind: StoreKind, n = 20, fixture = auditFixture(kind)) {
  const { log } = await openTestLog(fixture.setup, {
    checkpointEveryEntries: 8,
    groupCommit: false,
    maxBatch: 1,
  });
  for (let i = 0; i < n; i++) await log.append(item(i, { session: `s${i % 3}` }));
  await log.close();
  const check = await openAuditStore(fixture.setup);
  const trusted = (await check.checkpoints()).at(-1)!.note;
  await check.close();
  const trustedFile = join(fixture.dir, 'kept-elsewhere.checkpoint');
  writeFileSync(trustedFile, trusted);
  return { ...fixture, trustedFile, trusted };
}

/** What an attacker who rewrote entries does next: recompute each entry's stored root and the tree head. */
function rebuildStoredRoots(path: string): void {
  const db = new DatabaseSync(path);
  try {
    for (const trig of db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'").all())
      db.exec(`DROP TRIGGER ${(trig as { name: string }).name}`);
    const rows = db.prepare('SELECT idx, leaf FROM audit_entries ORDER BY idx').all() as {
      idx: number;
      leaf: Uint8Array;
    }[];
    const range = new CompactRange();
    for (const row of rows) {
      range.append(leafHash(Buffer.from(row.leaf)));
      db.prepare('UPDATE audit_entries SET root_after = ? WHERE idx = ?').run(range.root(), row.idx);
    }
    db.prepare('UPDATE audit_head SET size = ?, range = ?, root = ? WHERE id = 1').run(
      range.size,
      encodeRange(range),
      range.root(),
    );
  } finally {
    db.close();
  }
}

const verify = (f: { configPath: string; trustedFile: string }) =>
  run(['audit', 'verify', '--config', f.configPath, '--checkpoint', f.trustedFile]);

for (const kind of ['sqlite', 'postgres'] as const) {
  const t = (setup: AuditSetup, name: string): string =>
    kind === 'postgres' ? `${setup.config.table}_${name}` : `audit_${name}`;

  describe(`tamper drills on ${kind}`, () => {
    it('passes audit verify on an untouched log', async () => {
      const f = await build(kind);
      const r = await verify(f);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assert.equal(out.size, 20);
      assert.ok(out.checkpoints >= 2, 'a checkpoint every 8 entries and one at close');
    });

    it('names the corrupted row', async () => {
      const f = await build(kind);
      const bytes =
        kind === 'postgres'
          ? `'\\x${Buffer.from('{"n":99}').toString('hex')}'::bytea`
          : `X'${Buffer.from('{"n":99}').toString('hex')}'`;
      await attack(kind, f.setup, [`UPDATE ${t(f.setup, 'entries')} SET leaf = ${bytes} WHERE idx = 5`]);
      const r = await verify(f);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /at index 5:/);
    });

    it('names a missing row', async () => {
      const f = await build(kind);
      await attack(kind, f.setup, [`DELETE FROM ${t(f.setup, 'entries')} WHERE idx = 7`]);
      const r = await verify(f);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /at index 7: entry missing/);
    });

    it('names reordered rows', async () => {
      const f = await build(kind);
      const e = t(f.setup, 'entries');
      await attack(kind, f.setup, [
        `UPDATE ${e} SET idx = -1 WHERE idx = 3`,
        `UPDATE ${e} SET idx = 3 WHERE idx = 4`,
        `UPDATE ${e} SET idx = 4 WHERE idx = -1`,
      ]);
      const r = await verify(f);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /at index 3:/);
    });

    it('catches a checkpoint re-signed with another key', async () => {
      const f = await build(kind);
      const forger = parseSignerKey(generateSignerKey(ORIGIN));
      const c = openCheckpoint(f.trusted, auditSigner(f.setup, silentLogger));
      const forged = signCheckpoint(c, forger).replaceAll("'", "''");
      await attack(kind, f.setup, [
        `UPDATE ${t(f.setup, 'checkpoints')} SET note = '${forged}' WHERE size = ${c.size}`,
      ]);
      const r = await verify(f);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /checkpoint at size 20: no signature from a known key/);
    });

    it('names the index and column of every indexed column changed beside an intact leaf, even against a kept checkpoint', async () => {
      const f = await build(kind);
      const e = t(f.setup, 'entries');
      const verifier = auditSigner(f.setup, silentLogger);
      const columns: [string, string, string][] = [
        ['tool', "'hidden'", "'t'"],
        ['session', "'elsewhere'", "'s1'"],
        ['principal', "'mallory'", "'p'"],
        ['decision', "'allow'", "'none'"],
        ['kind', "'outcome'", "'decision'"],
        ['call_id', "'call-x'", "'call-4'"],
        ['time', '999', '4'],
      ];
      for (const [column, changed, original] of columns) {
        await attack(kind, f.setup, [`UPDATE ${e} SET ${column} = ${changed} WHERE idx = 4`]);
        const store = await openAuditStore(f.setup);
        const result = await verifyLog(store, verifier, f.trusted).finally(() => store.close());
        assert.deepEqual(
          { ...result, reason: undefined },
          {
            ok: false,
            index: 4,
            code: 'column-changed',
            column,
            reason: undefined,
          },
        );
        await attack(kind, f.setup, [`UPDATE ${e} SET ${column} = ${original} WHERE idx = 4`]);
      }
      await attack(kind, f.setup, [`UPDATE ${e} SET tool = 'hidden' WHERE idx = 5`]);
      const r = await verify(f);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /at index 5: column tool was changed: stored "hidden", the entry says "t"/);
      assert.equal(JSON.parse(r.stdout).code, 'column-changed');
    });

    it('reports a changed column as tampering in tail and replay instead of hiding the entry', async () => {
      const f = await build(kind);
      const e = t(f.setup, 'entries');
      await attack(kind, f.setup, [`UPDATE ${e} SET tool = 'hidden' WHERE idx = 5`]);
      const tail = await run(['audit', 'tail', '--config', f.configPath, '--tool', 't', '--limit', '100']);
      assert.equal(tail.code, 1, tail.stdout);
      assert.match(tail.stderr, /\[ERR_AUDIT_TAMPERED\] entry 5: column tool was changed/);
      await attack(kind, f.setup, [`UPDATE ${e} SET session = 'elsewhere' WHERE idx = 3`]);
      const replay = await run(['audit', 'replay', '--config', f.configPath, '--session', 's0']);
      assert.equal(replay.code, 1, replay.stdout);
      assert.match(replay.stderr, /\[ERR_AUDIT_TAMPERED\] entry 3: column session was changed/);
    });

    it('selects tail and replay entries by what their signed leaf says', async () => {
      const f = await build(kind);
      const indexes = (stdout: string) =>
        stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l).index as number);
      const tail = await run(['audit', 'tail', '--config', f.configPath, '--tool', 't', '--limit', '3']);
      assert.equal(tail.code, 0, tail.stderr);
      assert.deepEqual(indexes(tail.stdout), [17, 18, 19]);
      const replay = await run(['audit', 'replay', '--config', f.configPath, '--session', 's1', '--json']);
      assert.equal(replay.code, 0, replay.stderr);
      const calls: { entries: { index: number }[] }[] = JSON.parse(replay.stdout).calls;
      assert.deepEqual(
        calls.flatMap((c) => c.entries.map((e) => e.index)),
        [1, 4, 7, 10, 13, 16, 19],
      );
    });

    // The rewrite recomputes the stored roots with SQLite; what verify reports does not depend on the store.
    const sqliteOnly = kind === 'sqlite' ? it : () => {};
    sqliteOnly(
      'says how much the database alone proves when checkpoints were deleted and entries rewritten after them',
      async () => {
        const f = await build(kind);
        await attack(kind, f.setup, [
          'DELETE FROM audit_checkpoints WHERE size > 8',
          `UPDATE audit_entries SET leaf = X'${Buffer.from(canonicalize({ ...record(12, { session: 's0' }), n: 999 })).toString('hex')}' WHERE idx = 12`,
        ]);
        rebuildStoredRoots(f.setup.config.path);
        const alone = await run(['audit', 'verify', '--config', f.configPath]);
        assert.equal(alone.code, 0, alone.stderr);
        assert.deepEqual(JSON.parse(alone.stdout), {
          ok: true,
          size: 20,
          checkpoints: 1,
          signedSize: 8,
          anchored: false,
        });
        assert.match(alone.stderr, /entries 8\.\.19 are not covered by a signed checkpoint/);
        assert.match(alone.stderr, /no --checkpoint given/);
        const anchored = await verify(f);
        assert.equal(anchored.code, 1);
        assert.match(anchored.stderr, /history differs from the trusted checkpoint at size 20/);
      },
    );

    it('catches a rewritten history with a fresh tree signed by the real key', async () => {
      const f = await build(kind);
      // The attacker holds the database and the signing key and rebuilds the whole log.
      const fresh = auditFixture(kind);
      const raw = {
        ...f.raw,
        path: join(fresh.dir, 'audit.db'),
        ...(kind === 'postgres' ? { table: fresh.table } : {}),
      };
      const configPath = join(fresh.dir, 'rewritten.yaml');
      writeFileSync(configPath, stringify({ upstreams: { probe: probeUpstream() }, audit: raw }));
      const rewritten = {
        ...fresh,
        setup: { config: { ...f.setup.config, ...raw }, baseDir: fresh.dir } as AuditSetup,
      };
      const { log } = await openTestLog(rewritten.setup, { checkpointEveryEntries: 8, maxBatch: 8 });
      await Promise.all(Array.from({ length: 25 }, (_, i) => log.append(item(i === 5 ? 500 : i))));
      await log.close();
      const selfCheck = await run(['audit', 'verify', '--config', configPath]);
      assert.equal(selfCheck.code, 0, 'the rewritten log is internally consistent');
      const r = await verify({ configPath, trustedFile: f.trustedFile });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /history differs from the trusted checkpoint at size 20/);
    });

    it('loses nothing acknowledged when the writer is killed in the middle of appends', async () => {
      const f = auditFixture(kind);
      const child = spawn(NODE, [join(ROOT, 'test/audit/fixtures/append-child.ts'), f.configPath], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const acked = new Map<number, number>();
      await new Promise<void>((resolve) => {
        let buf = '';
        child.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          const lines = buf.split('\n');
          buf = lines.pop()!;
          for (const line of lines) {
            const [index, n] = line.split(' ').map(Number);
            acked.set(index!, n!);
          }
          if (acked.size >= 300) resolve();
        });
      });
      child.kill('SIGKILL');
      await new Promise((r) => child.once('close', r));
      const store = await openAuditStore(f.setup);
      try {
        const result = await verifyLog(store, auditSigner(f.setup, silentLogger));
        assert.equal(result.ok, true, JSON.stringify(result));
        const size = result.ok ? result.size : 0;
        assert.ok(size >= acked.size);
        const entries = await store.entries(0, size);
        for (const [index, n] of acked) assert.equal(JSON.parse(entries[index]!.leaf.toString()).n, n);
      } finally {
        await store.close();
      }
      const r = await run(['audit', 'verify', '--config', f.configPath]);
      assert.equal(r.code, 0, r.stderr);
    });
  });
}
