import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { RunningGateway } from '../../src/server.ts';
import {
  failsWith,
  httpClient,
  initializeBody,
  post,
  probeUpstream,
  REDIS_URL,
  startAuthTestGateway,
  startTestGateway,
} from '../helpers.ts';
import { freezableProxy } from '../identity/shared-revocations.ts';

const readyz = async (gw: RunningGateway) => {
  const res = await fetch(`${gw.admin!.url}/readyz`);
  return { status: res.status, body: (await res.json()) as { status: string; failing?: string[] } };
};

describe('the readiness probe (/readyz on the admin listener)', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('answers 200 while calls can be served', async () => {
    const gw = await startTestGateway({ upstreams: { probe: probeUpstream() } });
    try {
      assert.deepEqual(await readyz(gw), { status: 200, body: { status: 'ready' } });
    } finally {
      await gw.close();
    }
  });

  it('answers 503 naming the audit log once its file is gone, as every call is then denied', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-ready-'));
    dirs.push(dir);
    const gw = await startTestGateway({
      upstreams: { probe: probeUpstream() },
      audit: { path: join(dir, 'audit.db') },
    });
    const client = await httpClient(gw.listener.url, 'legacy');
    try {
      await client.callTool({ name: 'probe__echo', arguments: { text: 'before' } });
      unlinkSync(join(dir, 'audit.db'));
      assert.deepEqual(await readyz(gw), { status: 503, body: { status: 'not-ready', failing: ['audit'] } });
      await assert.rejects(
        client.callTool({ name: 'probe__echo', arguments: { text: 'after' } }),
        failsWith(-32004, /Request denied/),
      );
      // The log refuses every call until a restart: the liveness probe asks for one.
      const health = await fetch(`${gw.admin!.url}/healthz`);
      assert.deepEqual(
        [health.status, await health.json()],
        [503, { status: 'restart-needed', failing: ['audit'] }],
      );
    } finally {
      await client.close();
      await gw.close();
    }
  });

  it('answers 503 naming the revocations when their store stops answering', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-ready-'));
    dirs.push(dir);
    const proxy = await freezableProxy(REDIS_URL);
    const prefix = `ready-${randomBytes(4).toString('hex')}:`;
    const gw = await startAuthTestGateway(
      { upstreams: { probe: probeUpstream() }, state: { store: 'redis', url: proxy.url, prefix } },
      dir,
    );
    try {
      // A call goes through first: the store answered (a probe now would be reused for a second).
      const { token } = await gw.token('agent', ['probe__echo']);
      const init = await post(gw.url, initializeBody(), { authorization: `Bearer ${token}` });
      assert.equal(init.status, 200);
      proxy.freeze();
      assert.deepEqual(await readyz(gw.running), {
        status: 503,
        body: { status: 'not-ready', failing: ['revocations'] },
      });
    } finally {
      // The proxy first: a gateway closing behind a frozen store waits for its commands to time out.
      await proxy.close();
      await gw.running.close();
    }
  });
});
