import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type EgressDecision, EgressProxy } from '../../src/sandbox/egress.ts';

/** An absolute-form GET through the proxy's unix socket, as a sandboxed upstream sends it. */
const viaProxy = (socketPath: string, url: string) =>
  new Promise<number>((resolve, reject) => {
    const req = request({ socketPath, path: url, headers: { host: new URL(url).host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });

describe('the egress proxy of an allowlist sandbox', () => {
  const web = createServer((_req, res) => res.end('reached'));
  let port = 0;
  before(async () => {
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    port = (web.address() as AddressInfo).port;
  });
  after(() => web.close());

  it('lets nothing out, not even an allowlisted host, while the audit log cannot record it', async () => {
    let recordable = true;
    const decisions: EgressDecision[] = [];
    const proxy = await EgressProxy.start({
      upstream: 'u',
      allow: [`localhost:${port}`],
      decided: (d) => decisions.push(d),
      recordable: () => recordable,
    });
    try {
      const url = `http://localhost:${port}/`;
      assert.equal(await viaProxy(proxy.socketPath, url), 200);
      recordable = false;
      assert.equal(await viaProxy(proxy.socketPath, url), 403);
      recordable = true;
      assert.equal(await viaProxy(proxy.socketPath, url), 200);
      assert.deepEqual(
        decisions.map((d) => [d.allowed, d.unrecorded ?? false]),
        [
          [true, false],
          [false, true],
          [true, false],
        ],
      );
    } finally {
      await proxy.close();
    }
  });
});
