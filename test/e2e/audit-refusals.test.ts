import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { refusalRecords } from '../audit/helpers.ts';
import { initializeBody, post, probeUpstream, startAuthTestGateway } from '../helpers.ts';

describe('requests refused before any call exists', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-refusals-'));
  const auditPath = join(dir, 'audit.db');
  let gw: Awaited<ReturnType<typeof startAuthTestGateway>>;
  before(async () => {
    gw = await startAuthTestGateway(
      { upstreams: { probe: probeUpstream() }, audit: { path: auditPath } },
      dir,
    );
  });

  const refusals = () => refusalRecords(auditPath, dir);

  it('are recorded in the audit log as counts per source and reason, with why, and never with the credential', {
    timeout: 20_000,
  }, async () => {
    const forged = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0.';
    const statuses: number[] = [];
    try {
      for (let i = 0; i < 3; i++)
        statuses.push((await post(gw.url, initializeBody(), { authorization: `Bearer ${forged}` })).status);
      statuses.push((await post(gw.url, initializeBody())).status);
    } finally {
      // Shutting down writes the interval's counts.
      await gw.running.close();
    }
    assert.deepEqual(statuses, [401, 401, 401, 401]);
    const found = await refusals();
    // Intervals are aligned to the wall clock: the three forged requests may be
    // counted in two of them, so the counts are summed per reason.
    const byReason = new Map<
      string,
      { count: number; posts: number; statuses: Set<unknown>; from: Set<unknown> }
    >();
    for (const r of found) {
      const sum = byReason.get(String(r.reason)) ?? {
        count: 0,
        posts: 0,
        statuses: new Set(),
        from: new Set(),
      };
      sum.count += r.count as number;
      sum.posts += (r.methods as { POST: number }).POST;
      sum.statuses.add(r.status);
      sum.from.add(r.remoteAddress);
      byReason.set(String(r.reason), sum);
    }
    const rows = [...byReason]
      .map(([reason, s]) => [
        reason === 'missing' ? 'missing' : 'forged',
        s.count,
        s.posts,
        [...s.statuses],
        [...s.from],
      ])
      .sort((a, b) => (a[1] as number) - (b[1] as number));
    assert.deepEqual(
      rows,
      [
        ['missing', 1, 1, [401], ['127.0.0.1']],
        ['forged', 3, 3, [401], ['127.0.0.1']],
      ],
      JSON.stringify(found),
    );
    assert.ok(!JSON.stringify(found).includes(forged));
  });
});
