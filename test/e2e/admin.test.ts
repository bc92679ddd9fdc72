import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunningGateway } from '../../src/server.ts';
import { httpClient, probeUpstream, startTestGateway } from '../helpers.ts';

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

  it('refuses a non-loopback admin listener in the config', async () => {
    await assert.rejects(
      startTestGateway({ upstreams: { probe: probeUpstream() }, admin: { host: '0.0.0.0' } }),
      (e: { code?: string }) => e.code === 'ERR_CONFIG_INVALID',
    );
  });
});
