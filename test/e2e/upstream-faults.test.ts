import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunningGateway } from '../../src/server.ts';
import {
  failsWith,
  hangUntilUpstreamTimeout,
  httpClient,
  probeUpstream,
  startTestGateway,
  textOf,
} from '../helpers.ts';

/** The hung call waits this long: the timeout is what is tested, not a race (the handshake is done first). */
const TIMEOUT_MS = 4000;

describe('upstream faults', () => {
  let gw: RunningGateway;
  before(async () => {
    process.env.PORTCULLIS_TEST_GATEWAY_SECRET = 'must-not-leak';
    process.env.PROBE_SOURCE = 'granted-value';
    gw = await startTestGateway({
      upstreams: {
        probe: probeUpstream({
          isolation: 'session',
          timeoutMs: TIMEOUT_MS,
          env: { PROBE_TOKEN: 'env:PROBE_SOURCE' },
          restart: { initialDelayMs: 50, maxDelayMs: 200 },
        }),
      },
    });
  });
  after(() => gw.close());

  it('fails a call to a hung upstream within the configured timeout and stays up', async () => {
    const client = await httpClient(gw.listener.url, 'legacy');
    failsWith(-32002, /Upstream timed out/)(await hangUntilUpstreamTimeout(client));
    const echo = await client.callTool({ name: 'probe__echo', arguments: { text: 'still here' } });
    assert.equal(textOf(echo), 'still here');
    await client.close();
  });

  it('fails the call when a stdio upstream dies and restarts it for the next call', async () => {
    const client = await httpClient(gw.listener.url, 'legacy');
    const before = textOf(await client.callTool({ name: 'probe__pid', arguments: {} }));
    await assert.rejects(
      client.callTool({ name: 'probe__crash', arguments: {} }),
      failsWith(-32002, /Upstream unavailable/),
    );
    const after = textOf(await client.callTool({ name: 'probe__pid', arguments: {} }));
    assert.notEqual(after, before);
    await client.close();
  });

  it('spawns stdio upstreams with only the variables the config names, never the gateway environment', async () => {
    const client = await httpClient(gw.listener.url, 'legacy');
    const names = JSON.parse(
      textOf(await client.callTool({ name: 'probe__env', arguments: {} })),
    ) as string[];
    assert.ok(!names.includes('PORTCULLIS_TEST_GATEWAY_SECRET'));
    assert.ok(!names.includes('PROBE_SOURCE'));
    assert.ok(names.includes('PROBE_TOKEN'));
    const allowed = new Set(['HOME', 'LOGNAME', 'PATH', 'SHELL', 'TERM', 'USER', 'PROBE_TOKEN']);
    assert.deepEqual(
      names.filter((n) => !allowed.has(n)),
      [],
    );
    assert.equal(
      textOf(await client.callTool({ name: 'probe__secret_env', arguments: {} })),
      'granted-value',
    );
    await client.close();
  });

  it('keeps each legacy session on its own upstream process with isolation session', async () => {
    const a = await httpClient(gw.listener.url, 'legacy');
    const b = await httpClient(gw.listener.url, 'legacy');
    const pa = textOf(await a.callTool({ name: 'probe__pid', arguments: {} }));
    const pb = textOf(await b.callTool({ name: 'probe__pid', arguments: {} }));
    assert.notEqual(pa, pb);
    await Promise.all([a.close(), b.close()]);
  });
});
