import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunningGateway } from '../../src/server.ts';
import {
  type Era,
  eventually,
  httpClient,
  initializeBody,
  post,
  probeUpstream,
  startTestGateway,
  textOf,
} from '../helpers.ts';

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

describe('client notifications', () => {
  let gw: RunningGateway;
  before(async () => {
    // Only a session's own upstream instance hears of the client's roots.
    gw = await startTestGateway({ upstreams: { probe: probeUpstream({ isolation: 'session' }) } });
  });
  after(() => gw.close());

  it('relays roots/list_changed to the upstream but never a request sent without an id', async () => {
    const init = await post(gw.listener.url, initializeBody());
    const session = {
      'mcp-session-id': init.headers.get('mcp-session-id')!,
      'mcp-protocol-version': '2025-11-25',
    };
    const send = (message: object) =>
      post(gw.listener.url, JSON.stringify({ jsonrpc: '2.0', ...message }), session);
    await send({ method: 'notifications/initialized' });
    let id = 1;
    const seen = async (): Promise<string[]> => {
      const res = await send({
        id: ++id,
        method: 'tools/call',
        params: { name: 'probe__unhandled_notifications' },
      });
      return JSON.parse(textOf((res.json as { result: unknown }).result)) as string[];
    };
    assert.deepEqual(await seen(), []);
    const smuggled = { method: 'tools/call', params: { name: 'echo', arguments: { text: 'no id' } } };
    assert.equal((await send(smuggled)).status, 202);
    assert.equal((await send({ method: 'notifications/roots/list_changed' })).status, 202);
    await eventually(async () => (await seen()).includes('notifications/roots/list_changed'));
    assert.deepEqual(await seen(), ['notifications/roots/list_changed']);
  });
});
