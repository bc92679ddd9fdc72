import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { JsonRpcMessage } from '../../src/jsonrpc.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { SseParser } from '../../src/protocol/sse.ts';
import { HttpUpstreamTransport } from '../../src/upstream/http.ts';

describe('an upstream event stream that never ends its event', () => {
  let server: http.Server;
  let url = '';
  before(async () => {
    // Answers every POST with one event whose data never ends: 17 MiB and more.
    server = http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const line = `data: ${'x'.repeat(1024 * 1024)}\n`;
      const write = () => {
        while (res.write(line)) if (res.destroyed) return;
        if (!res.destroyed) res.once('drain', write);
      };
      res.on('error', () => {});
      write();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('counts the characters of the event not yet ended', () => {
    const p = new SseParser(() => {});
    p.push('data: abc\ndata: de');
    assert.equal(p.pendingChars, 'abc'.length + 1 + 'data: de'.length);
    p.push('\n\n');
    assert.equal(p.pendingChars, 0);
  });

  it('is cut off past 16 MiB, and the call gets Upstream unavailable instead of the gateway growing without end', async () => {
    const t = new HttpUpstreamTransport({
      name: 'endless',
      url,
      headers: {},
      log: silentLogger,
      timeoutMs: 1000,
    });
    const answer = new Promise<JsonRpcMessage>((resolve) => {
      t.onmessage = resolve;
    });
    await t.send({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'x', arguments: {} } });
    const m = (await answer) as { id: number; error?: { code: number; message: string } };
    assert.equal(m.id, 7);
    assert.deepEqual(m.error, { code: -32002, message: 'Upstream unavailable' });
    await t.close();
  });
});
