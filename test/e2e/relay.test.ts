import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunningGateway } from '../../src/server.ts';
import { type Era, httpClient, probeUpstream, startTestGateway, textOf } from '../helpers.ts';

for (const era of ['legacy', 'modern'] as Era[]) {
  describe(`relay over HTTP to a ${era} client`, () => {
    let gw: RunningGateway;
    before(async () => {
      gw = await startTestGateway({ upstreams: { probe: probeUpstream(), other: probeUpstream() } });
    });
    after(() => gw.close());

    it('lists the tools of every upstream under collision-free prefixed names', async () => {
      const client = await httpClient(gw.listener.url, era);
      const { tools } = await client.listTools();
      const names = tools.map((t) => t.name).sort();
      assert.ok(names.includes('probe__echo'));
      assert.ok(names.includes('other__echo'));
      assert.equal(new Set(names).size, names.length);
      await client.close();
    });

    it('routes a prefixed tool call to its upstream and relays the result', async () => {
      const client = await httpClient(gw.listener.url, era);
      const result = await client.callTool({ name: 'other__echo', arguments: { text: `hello ${era}` } });
      assert.equal(textOf(result), `hello ${era}`);
      await client.close();
    });

    it('answers an unknown tool with an error that names no upstream', async () => {
      const client = await httpClient(gw.listener.url, era);
      await assert.rejects(client.callTool({ name: 'nosuch__echo', arguments: {} }), (err: Error) => {
        assert.match(err.message, /Unknown tool/);
        assert.doesNotMatch(err.message, /probe|other/);
        return true;
      });
      await client.close();
    });
  });
}
