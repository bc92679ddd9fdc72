import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openAudit } from '../../src/audit/open.ts';
import type { PolicySetChange, PolicySetSnapshot } from '../../src/audit/policy-set-records.ts';
import { PolicySetRecords } from '../../src/audit/policy-sets.ts';
import { AuditService } from '../../src/audit/service.ts';
import type { AppendItem } from '../../src/audit/store.ts';
import { SqliteAuditStore } from '../../src/audit/store-sqlite.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { auditDecisionStage } from '../../src/pipeline/stages/audit-decision.ts';
import { testCallContext } from '../helpers.ts';
import { auditFixture } from './helpers.ts';

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

describe('a decision naming a policy set the log does not hold yet', () => {
  it('is denied with ERR_AUDIT_UNAVAILABLE, and recorded after the set once the set is written', async () => {
    const f = auditFixture('sqlite');
    const audit = new AuditService(() => openAudit(f.setup, silentLogger));
    // The write begun when the set is noted, and the one the first call tries again.
    let failures = 2;
    const flaky: PolicySetSnapshot = {
      hash: 'sha256:flaky',
      files: [],
      get policies() {
        if (failures-- > 0) throw new Error('the set could not be read');
        return [];
      },
    };
    audit.notePolicySet({ event: 'loaded', live: flaky });
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
