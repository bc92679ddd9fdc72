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
    assert.equal(found.length, 2, JSON.stringify(found));
    const byCount = found.sort((a, b) => (a.count as number) - (b.count as number));
    assert.deepEqual(
      byCount.map((r) => [r.count, r.status, r.methods, r.remoteAddress]),
      [
        [1, 401, { POST: 1 }, '127.0.0.1'],
        [3, 401, { POST: 3 }, '127.0.0.1'],
      ],
    );
    assert.equal(byCount[0]!.reason, 'missing');
    assert.equal(typeof byCount[1]!.reason, 'string');
    assert.ok(!JSON.stringify(found).includes(forged));
  });
});
