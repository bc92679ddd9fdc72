import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openAuditStore } from '../../src/audit/open.ts';
import { auditFixture } from '../audit/helpers.ts';
import { httpClient, probeUpstream, startAuthTestGateway } from '../helpers.ts';

async function decisions(f: ReturnType<typeof auditFixture>) {
  const store = await openAuditStore(f.setup);
  try {
    const head = await store.head();
    return (await store.entries(0, head.size))
      .map((e) => JSON.parse(e.leaf.toString()) as Record<string, unknown>)
      .filter((r) => r.type === 'decision' && r.tool === 'probe__echo');
  } finally {
    await store.close();
  }
}

describe('the reason in the decision record', () => {
  it('stores the reason policy decided on: the declared one over the token one, and says which', async () => {
    const f = auditFixture('sqlite');
    const dir = mkdtempSync(join(tmpdir(), 'pc-reason-'));
    const { running, token, url } = await startAuthTestGateway(
      { upstreams: { probe: probeUpstream() }, audit: f.raw },
      dir,
    );
    const { token: bearer } = await token('agent-1', ['probe__echo']);
    const client = await httpClient(url, 'legacy', { authorization: `Bearer ${bearer}` });
    try {
      await client.callTool({
        name: 'probe__echo',
        arguments: { text: 'a' },
        _meta: { 'io.portcullis/reason': 'ticket 42' },
      });
      await client.callTool({ name: 'probe__echo', arguments: { text: 'b' } });
    } finally {
      await client.close();
      await running.close();
    }
    const [declared, fallback] = await decisions(f);
    assert.equal(declared?.reason, 'ticket 42');
    assert.equal(declared?.reasonSource, 'declared');
    // The test token's `reason` claim is "test".
    assert.equal(fallback?.reason, 'test');
    assert.equal(fallback?.reasonSource, 'token');
  });

  it('stores no reason, and no source, when neither the call nor the caller gave one', async () => {
    const f = auditFixture('sqlite');
    const { startTestGateway } = await import('../helpers.ts');
    const gw = await startTestGateway({ upstreams: { probe: probeUpstream() }, audit: f.raw });
    const client = await httpClient(gw.listener.url, 'legacy');
    try {
      await client.callTool({ name: 'probe__echo', arguments: { text: 'c' } });
    } finally {
      await client.close();
      await gw.close();
    }
    const [record] = await decisions(f);
    assert.equal(record?.reason, null);
    assert.equal(record?.reasonSource, null);
  });
});
