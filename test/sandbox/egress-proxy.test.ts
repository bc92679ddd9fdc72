import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request } from 'node:http';
import { type AddressInfo, connect, createServer as createNetServer } from 'node:net';
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

describe('a tunnel through the egress proxy', () => {
  // The timeout only bounds a regression (a tunnel never cut would never close); nothing waits on it.
  it('is refused with 403 while the audit log cannot record it, and cut when the log breaks while it is open', {
    timeout: 30_000,
  }, async () => {
    const echo = createNetServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const port = (echo.address() as AddressInfo).port;
    let recordable = false;
    const proxy = await EgressProxy.start({
      upstream: 'u',
      allow: [`localhost:${port}`],
      decided: () => {},
      recordable: () => recordable,
    });
    const open = async () => {
      const socket = connect(proxy.socketPath);
      socket.write(`CONNECT localhost:${port} HTTP/1.1\r\nHost: localhost:${port}\r\n\r\n`);
      const [first] = (await once(socket, 'data')) as [Buffer];
      return { socket, status: first.toString().split(' ')[1] };
    };
    try {
      const refused = await open();
      assert.equal(refused.status, '403');
      refused.socket.destroy();
      recordable = true;
      const tunnel = await open();
      assert.equal(tunnel.status, '200');
      tunnel.socket.write('through');
      assert.equal(String(((await once(tunnel.socket, 'data')) as [Buffer])[0]), 'through');
      recordable = false;
      tunnel.socket.write('after the break');
      await once(tunnel.socket, 'close');
      assert.equal(tunnel.socket.destroyed, true, 'the open tunnel was cut');
    } finally {
      await proxy.close();
      echo.close();
    }
  });
});
