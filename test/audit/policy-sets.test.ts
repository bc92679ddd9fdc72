import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { openAudit } from '../../src/audit/open.ts';
import { findPolicySet } from '../../src/audit/policy-set-lookup.ts';
import {
  type PolicySetChange,
  type PolicySetSnapshot,
  policySetItem,
} from '../../src/audit/policy-set-records.ts';
import { PolicySetRecords } from '../../src/audit/policy-sets.ts';
import { MAX_LEAF } from '../../src/audit/records.ts';
import { AuditService } from '../../src/audit/service.ts';
import type { AppendItem } from '../../src/audit/store.ts';
import { SqliteAuditStore } from '../../src/audit/store-sqlite.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { auditDecisionStage } from '../../src/pipeline/stages/audit-decision.ts';
import { testCallContext } from '../helpers.ts';
import { auditFixture, itemOf, openTestLog } from './helpers.ts';

const snapshot = (hash: string): PolicySetSnapshot => ({
  hash,
  files: ['/etc/portcullis/p.cedar'],
  policies: [{ id: 'p0', text: 'permit (principal, action, resource);' }],
});
const change = (hash: string, event: PolicySetChange['event'] = 'reloaded'): PolicySetChange => ({
  event,
  live: snapshot(hash),
});

/** A write that waits until the test lets it go, or fails. */
function gatedWrites() {
  const written: string[] = [];
  const waiting: { item: AppendItem; go: () => void; fail: (e: Error) => void }[] = [];
  const write = (item: AppendItem) =>
    new Promise<void>((resolve, reject) => {
      waiting.push({
        item,
        go: () => {
          written.push(JSON.parse(item.leaf.toString()).policySetHash);
          resolve();
        },
        fail: reject,
      });
    });
  const next = async () => {
    while (waiting.length === 0) await new Promise((r) => setImmediate(r));
    return waiting.shift()!;
  };
  return { written, write, next };
}

const records = (w: ReturnType<typeof gatedWrites>) =>
  new PolicySetRecords({ write: w.write, now: () => 1, newId: () => 'id', log: silentLogger });

describe('the policy-set records', () => {
  it('have nothing to wait for once every set noted is written', async () => {
    const w = gatedWrites();
    const sets = records(w);
    assert.equal(sets.settled(), undefined);
    sets.note(change('sha256:a', 'loaded'));
    const settled = sets.settled();
    assert.ok(settled, 'a set is being written');
    (await w.next()).go();
    await settled;
    assert.equal(sets.settled(), undefined);
    assert.deepEqual(w.written, ['sha256:a']);
  });

  it('write the sets in the order they went live, and cover one noted while the last write ends', async () => {
    const w = gatedWrites();
    const sets = records(w);
    sets.note(change('sha256:a', 'loaded'));
    const first = sets.settled()!;
    (await w.next()).go();
    // Noted after the write ended but before whoever waits on it hears so.
    sets.note(change('sha256:b'));
    let done = false;
    const both = first.then(() => {
      done = true;
    });
    (await w.next()).go();
    await both;
    assert.equal(done, true);
    assert.deepEqual(w.written, ['sha256:a', 'sha256:b']);
    assert.equal(sets.settled(), undefined);
  });

  it('reject while a set cannot be written, and write it at the next look once the log takes it', async () => {
    const w = gatedWrites();
    const sets = records(w);
    sets.note(change('sha256:a', 'loaded'));
    const failing = sets.settled()!;
    (await w.next()).fail(new Error('disk full'));
    await assert.rejects(failing, /disk full/);
    const again = sets.settled();
    assert.ok(again, 'still unrecorded');
    (await w.next()).go();
    await again;
    assert.deepEqual(w.written, ['sha256:a']);
  });
});

describe('the record of a refused reload', () => {
  it('fits one entry and is whole text, however many problems in whatever script', () => {
    const problems = Array.from({ length: 500 }, (_, i) => `${i}: ${'😀'.repeat(2000)} 書 \u0001`);
    const item = policySetItem({ ...change('sha256:a', 'refused'), problems }, 1, 'id');
    assert.ok(item.leaf.length < MAX_LEAF, `${item.leaf.length} bytes`);
    const kept = JSON.parse(item.leaf.toString()).problems as string[];
    assert.equal(kept.length, 21);
    assert.equal(kept.at(-1), 'and 480 more');
    assert.ok(kept.every((p) => p.isWellFormed()));
  });
});

describe('a decision naming a policy set the log does not hold yet', () => {
  it('is denied with ERR_AUDIT_UNAVAILABLE, and recorded after the set once the set is written', async () => {
    const f = auditFixture('sqlite');
    // Its writes fail (a disk that filled) until the test lets them through.
    let failing = true;
    const audit = new AuditService(async () => {
      const open = await openAudit(f.setup, silentLogger);
      const append = open.log.append.bind(open.log);
      open.log.append = (item, ...rest) =>
        item.meta.kind === 'policy-set' && failing
          ? Promise.reject(new Error('disk full'))
          : append(item, ...rest);
      return open;
    });
    audit.notePolicySet(change('sha256:flaky', 'loaded'));
    const call = () =>
      testCallContext({
        request: {
          jsonrpc: '2.0',
          id: 1,
          method: 'tools/call',
          params: { name: 'probe__echo', arguments: {} },
        },
      });
    const stage = auditDecisionStage(audit);
    await assert.rejects(async () => stage.run(call()), { code: 'ERR_AUDIT_UNAVAILABLE' });
    failing = false;
    const ctx = call();
    await stage.run(ctx);
    await ctx.decisionCommit;
    await audit.close();
    const store = new SqliteAuditStore(f.setup.config.path);
    const types = (await store.entries(0, (await store.head()).size)).map(
      (e) => JSON.parse(e.leaf.toString()).type,
    );
    await store.close();
    assert.deepEqual(types, ['policy-set', 'decision'], 'no decision of the denied call, the set first');
  });
});

describe('looking up a policy set in the log', () => {
  it('reads texts shaped otherwise than a policy set as tampering, never as a crash', async () => {
    const f = auditFixture('sqlite');
    const { store, log } = await openTestLog(f.setup);
    try {
      for (const data of ['null', '{"live":{"files":[],"policies":5}}', 'not json']) {
        const bytes = Buffer.from(data);
        const hash = createHash('sha256').update(bytes).digest('hex');
        const record = JSON.parse(policySetItem(change(`sha256:${data}`, 'loaded'), 1, 'id').leaf.toString());
        await log.append({
          ...itemOf({ ...record, policies: { blob: hash, bytes: bytes.length } }),
          blobs: [{ hash, data: bytes }],
        });
        await assert.rejects(findPolicySet(store, `sha256:${data}`), (err: Error & { code: string }) => {
          assert.equal(err.code, 'ERR_AUDIT_TAMPERED');
          assert.match(err.message, /are not a policy set/);
          return true;
        });
      }
      await assert.rejects(findPolicySet(store, 'sha256:none'), { code: 'ERR_NOT_FOUND' });
    } finally {
      await log.close();
    }
  });
});
