import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { httpClient, probeUpstream, startAuthTestGateway, textOf } from '../helpers.ts';

/** What the SDK's stdio transport passes to every child: harmless variables, never secrets. */
const HARMLESS = new Set(['PATH', 'HOME', 'USER', 'SHELL', 'TERM', 'LOGNAME']);

describe('no passthrough, no inheritance', () => {
  let dir: string;
  let gw: Awaited<ReturnType<typeof startAuthTestGateway>>;
  const ambient = `PORTCULLIS_AMBIENT_${process.pid}`;
  const configured = `PORTCULLIS_GIVEN_${process.pid}`;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-nopass-'));
    // A secret in the gateway's own environment that no upstream is configured to get.
    process.env[ambient] = 'gateway-only-secret';
    process.env[configured] = 'for-the-probe';
    gw = await startAuthTestGateway(
      { upstreams: { probe: probeUpstream({ env: { PROBE_TOKEN: `env:${configured}` } }) } },
      dir,
    );
  });
  after(async () => {
    await gw.running.close();
    delete process.env[ambient];
    delete process.env[configured];
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts a stdio upstream with only the variables its config names, and never the caller token', async () => {
    const { token } = await gw.token('agent-1', ['probe__env', 'probe__secret_env']);
    const client = await httpClient(gw.url, 'modern', { authorization: `Bearer ${token}` });
    const names = JSON.parse(
      textOf(await client.callTool({ name: 'probe__env', arguments: {} })),
    ) as string[];
    const value = textOf(await client.callTool({ name: 'probe__secret_env', arguments: {} }));
    await client.close();
    assert.deepEqual(
      names.filter((n) => !HARMLESS.has(n)),
      ['PROBE_TOKEN'],
    );
    assert.equal(value, 'for-the-probe');
    assert.ok(!names.includes(ambient));
  });
});
