import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunningGateway } from '../../src/server.ts';
import { type Era, httpClient, probeUpstream, startTestGateway, textOf } from '../helpers.ts';

// A gateway is itself a Streamable HTTP MCP server of both eras: the inner one
// serves as a real HTTP upstream for the outer one.
describe('HTTP upstreams', () => {
  let inner: RunningGateway;
  let outer: RunningGateway;
  before(async () => {
    inner = await startTestGateway({ upstreams: { probe: probeUpstream() } });
    outer = await startTestGateway({ upstreams: { remote: { transport: 'http', url: inner.listener.url } } });
  });
  after(async () => {
    await outer.close();
    await inner.close();
  });

  for (const era of ['legacy', 'modern'] as Era[]) {
    it(`relays a ${era} client's tool call to an HTTP upstream and back`, async () => {
      const client = await httpClient(outer.listener.url, era);
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === 'remote__probe__echo'));
      const result = await client.callTool({
        name: 'remote__probe__echo',
        arguments: { text: `via http ${era}` },
      });
      assert.equal(textOf(result), `via http ${era}`);
      await client.close();
    });
  }

  it('fails a call with a clear error when the HTTP upstream is gone, and stays up', async () => {
    const dead = await startTestGateway({
      upstreams: { gone: { transport: 'http', url: 'http://127.0.0.1:9/mcp' } },
    });
    try {
      const client = await httpClient(dead.listener.url, 'legacy');
      await assert.rejects(client.callTool({ name: 'gone__echo', arguments: {} }), /Upstream unavailable/);
      await client.close();
    } finally {
      await dead.close();
    }
  });
});
