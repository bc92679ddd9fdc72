import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { auditSchema } from '../../src/audit/config.ts';
import { openAuditStore } from '../../src/audit/open.ts';
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
  after(() => gw.running.close());

  async function refusals(): Promise<Record<string, unknown>[]> {
    const store = await openAuditStore({ config: auditSchema.parse({ path: auditPath }), baseDir: dir });
    try {
      const head = await store.head();
      const all = (await store.entries(0, head.size)).map((e) => JSON.parse(e.leaf.toString()));
      return all.filter((r) => r.type === 'refusal');
    } finally {
      await store.close();
    }
  }

  it('are recorded in the audit log with why, and never with the credential', {
    timeout: 20_000,
  }, async () => {
    const forged = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0.';
    const res = await post(gw.url, initializeBody(), { authorization: `Bearer ${forged}` });
    assert.equal(res.status, 401);
    let found: Record<string, unknown>[] = [];
    while (found.length === 0) {
      found = await refusals();
      if (found.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    const [refusal] = found;
    assert.equal(refusal!.status, 401);
    assert.equal(refusal!.httpMethod, 'POST');
    assert.equal(typeof refusal!.reason, 'string');
    assert.ok(!JSON.stringify(refusal).includes(forged));
  });
});
