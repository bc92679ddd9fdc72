import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { JsonRpcResponse } from '../../src/jsonrpc.ts';
import { SqliteRevocationStore } from '../../src/state/sqlite.ts';
import { serveStdio } from '../../src/transport/stdio-listener.ts';
import { eventually, probeUpstream, signallingLogger, startAuthTestGateway, textOf } from '../helpers.ts';

/** A stdio client of the gateway on in-memory pipes (what `portcullis wrap` serves). */
function stdioClient(serve: (input: PassThrough, output: PassThrough) => Promise<void>) {
  const input = new PassThrough();
  const output = new PassThrough();
  const waiting = new Map<number, (m: JsonRpcResponse) => void>();
  let buffered = '';
  output.setEncoding('utf8');
  output.on('data', (chunk: string) => {
    buffered += chunk;
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const message = JSON.parse(buffered.slice(0, nl)) as JsonRpcResponse;
      buffered = buffered.slice(nl + 1);
      if (typeof message.id === 'number') waiting.get(message.id)?.(message);
    }
  });
  const done = serve(input, output);
  let id = 0;
  return {
    request(method: string, params: object = {}): Promise<JsonRpcResponse> {
      const n = ++id;
      return new Promise((resolve) => {
        waiting.set(n, resolve);
        input.write(`${JSON.stringify({ jsonrpc: '2.0', id: n, method, params })}\n`);
      });
    },
    notify(method: string) {
      input.write(`${JSON.stringify({ jsonrpc: '2.0', method })}\n`);
    },
    async close() {
      input.end();
      await done;
    },
  };
}

describe('a stdio caller that is revoked', () => {
  let dir: string;
  let seenFile: string;
  let gw: Awaited<ReturnType<typeof startAuthTestGateway>>;
  const log = signallingLogger();
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-stdio-revoke-'));
    // The probe writes what it hears here: the one folder its sandbox may write (as nobody, under root).
    const seen = join(dir, 'seen');
    mkdirSync(seen);
    chmodSync(dir, 0o711);
    chmodSync(seen, 0o777);
    seenFile = join(seen, 'upstream-notifications.log');
    writeFileSync(seenFile, '');
    chmodSync(seenFile, 0o666);
    process.env.PORTCULLIS_TEST_SEEN_FILE = seenFile;
    // Only a session's own upstream instance hears of the client's roots.
    const probe = probeUpstream({
      isolation: 'session',
      sandbox: { writable: [seen] },
      env: { PROBE_NOTIFICATIONS_FILE: 'env:PORTCULLIS_TEST_SEEN_FILE' },
    });
    gw = await startAuthTestGateway({ upstreams: { probe } }, dir, log);
  });
  after(async () => {
    await gw.running.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gets neither calls nor notifications through to an upstream once revoked', async () => {
    const gateway = gw.running.gateway;
    const { token, jti } = await gw.token('agent-1', ['probe__echo']);
    const principal = await gateway.identity.authenticate(`Bearer ${token}`);
    const client = stdioClient((input, output) =>
      serveStdio(gateway, { input, output, maxLineBytes: 1 << 20, principal }),
    );
    const info = { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } };
    await client.request('initialize', info);
    client.notify('notifications/initialized');
    const echoed = await client.request('tools/call', { name: 'probe__echo', arguments: { text: 'hi' } });
    assert.equal(textOf(echoed.result), 'hi');
    const upstreamSaw = () => readFileSync(seenFile, 'utf8').split('\n').filter(Boolean);
    client.notify('notifications/roots/list_changed');
    await eventually(() => upstreamSaw().length > 0);
    assert.deepEqual(upstreamSaw(), ['notifications/roots/list_changed']);

    const store = new SqliteRevocationStore(join(dir, 'state.db'));
    await store.revoke({ kind: 'jti', value: jti, revokedAt: Date.now() });
    await store.close();
    const refused = await client.request('tools/call', { name: 'probe__echo', arguments: { text: 'hi' } });
    assert.ok(refused.error, 'a call is refused once revoked');
    // The gateway says when it has dropped it: nothing can reach the upstream after that.
    const dropped = log.next('client notification dropped');
    client.notify('notifications/roots/list_changed');
    assert.match(await dropped, /caller refused/);
    await client.close();
    assert.deepEqual(
      upstreamSaw(),
      ['notifications/roots/list_changed'],
      'nothing more after the revocation',
    );
  });
});
