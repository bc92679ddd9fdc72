import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { RunningGateway } from '../../src/server.ts';
import { failsWith, httpClient, initializeBody, post, probeUpstream, startTestGateway } from '../helpers.ts';

describe('admin API', () => {
  let gw: RunningGateway;
  before(async () => {
    gw = await startTestGateway({ upstreams: { probe: probeUpstream() } });
  });
  after(() => gw.close());

  it('reports health', async () => {
    const res = await fetch(`${gw.admin!.url}/healthz`);
    assert.deepEqual(await res.json(), { status: 'ok' });
  });

  it('exports per-stage timings and call outcomes in the Prometheus format', async () => {
    const client = await httpClient(gw.listener.url, 'legacy');
    await client.callTool({ name: 'probe__echo', arguments: { text: 'x' } });
    await assert.rejects(client.callTool({ name: 'probe__nope', arguments: {} }));
    await client.close();
    const text = await (await fetch(`${gw.admin!.url}/metrics`)).text();
    assert.match(text, /portcullis_stage_duration_seconds_count\{stage="forward"\} [1-9]/);
    assert.match(text, /portcullis_stage_duration_seconds_count\{stage="parse"\} [1-9]/);
    assert.match(text, /portcullis_calls_total\{method="tools\/call",outcome="ok"\} 1/);
  });

  it('answers only requests addressed to loopback, so a rebound web page cannot read it', async () => {
    const get = (host: string, origin?: string) =>
      new Promise<number>((resolve, reject) => {
        const req = http.get(
          `${gw.admin!.url}/status`,
          { headers: { host, ...(origin ? { origin } : {}) } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
      });
    const port = new URL(gw.admin!.url).port;
    assert.equal(await get(`127.0.0.1:${port}`), 200);
    assert.equal(await get(`localhost:${port}`), 200);
    assert.equal(await get(`127.evil.example:${port}`), 403);
    assert.equal(await get(`evil.example:${port}`), 403);
    assert.equal(await get(`127.0.0.1:${port}`, 'http://127.evil.example'), 403);
  });

  it('keeps the method label of call counts to the protocol methods, whatever callers send', async () => {
    const init = await post(gw.listener.url, initializeBody());
    const session = {
      'mcp-session-id': init.headers.get('mcp-session-id')!,
      'mcp-protocol-version': '2025-11-25',
    };
    const made = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'x/made-up-1', params: {} });
    assert.equal((await post(gw.listener.url, made, session)).status, 200);
    const text = await (await fetch(`${gw.admin!.url}/metrics`)).text();
    assert.doesNotMatch(text, /made-up/);
    assert.match(text, /portcullis_calls_total\{method="other",outcome="[^"]+"\} [1-9]/);
  });

  it('refuses a non-loopback admin listener in the config', async () => {
    await assert.rejects(
      startTestGateway({ upstreams: { probe: probeUpstream() }, admin: { host: '0.0.0.0' } }),
      failsWith('ERR_CONFIG_INVALID'),
    );
  });
});
