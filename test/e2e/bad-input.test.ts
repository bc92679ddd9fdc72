import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { JSONRPC } from '../../src/errors.ts';
import type { RunningGateway } from '../../src/server.ts';
import { corpus, initializeBody, post, probeUpstream, startTestGateway } from '../helpers.ts';

const CORPUS = corpus('json-test-suite');
const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
};
const modernHeaders = (method: string, name?: string) => ({
  'mcp-protocol-version': '2026-07-28',
  'mcp-method': method,
  ...(name ? { 'mcp-name': name } : {}),
});

/** Sends raw bytes (not necessarily UTF-8) as a POST body. */
function postBytes(url: string, body: Buffer): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () => {
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {}
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('bad input at the HTTP listener', () => {
  let gw: RunningGateway;
  before(async () => {
    gw = await startTestGateway({
      upstreams: { probe: probeUpstream() },
      listen: { maxBodyBytes: 256 * 1024 },
    });
  });
  after(() => gw.close());

  it('rejects every n_ file of JSONTestSuite with -32700 or -32600 and survives every file', async () => {
    const files = readdirSync(CORPUS).filter((f) => f.endsWith('.json'));
    assert.ok(files.length > 300);
    for (const file of files) {
      const { status, json } = await postBytes(gw.listener.url, readFileSync(join(CORPUS, file)));
      assert.ok(status > 0, `${file}: no answer`);
      if (file.startsWith('n_')) {
        const code = (json as { error?: { code: number } }).error?.code;
        assert.ok(code === -32700 || code === -32600, `${file}: got ${status} ${JSON.stringify(json)}`);
      }
    }
    const alive = await post(gw.listener.url, initializeBody());
    assert.equal(alive.status, 200);
  });

  it('answers a body over the limit with 413 and forwards nothing', async () => {
    const big = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'ping',
      params: { pad: 'x'.repeat(300 * 1024) },
    });
    const res = await post(gw.listener.url, big);
    assert.equal(res.status, 413);
    assert.equal((res.json as { error: { code: number } }).error.code, -32600);
  });

  it('refuses a foreign Origin and a foreign Host with 403, names that look like 127.x too (DNS rebinding)', async () => {
    const origin = await post(gw.listener.url, initializeBody(), { origin: 'http://evil.example' });
    assert.equal(origin.status, 403);
    // A name that only starts like a loopback address is a name an attacker's DNS can rebind.
    const rebound = await post(gw.listener.url, initializeBody(), { origin: 'http://127.evil.example:80' });
    assert.equal(rebound.status, 403);
    const hostStatus = (host: string) =>
      new Promise<number>((resolve) => {
        const req = http.request(gw.listener.url, { method: 'POST', headers: { host } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.end(initializeBody());
      });
    assert.equal(await hostStatus('evil.example:80'), 403);
    assert.equal(await hostStatus('127.evil.example:80'), 403);
    const local = await post(gw.listener.url, initializeBody(), { origin: 'http://localhost:3000' });
    assert.equal(local.status, 200);
  });

  it('requires a session id after initialize (400) and rejects an unknown one (404)', async () => {
    const ping = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' });
    const missing = await post(gw.listener.url, ping);
    assert.equal(missing.status, 400);
    assert.equal((missing.json as { error: { code: number } }).error.code, JSONRPC.TRANSPORT_REFUSED);
    const unknown = await post(gw.listener.url, ping, { 'mcp-session-id': 'no-such-session' });
    assert.equal(unknown.status, 404);
    // The SDK's reference server answers an unknown session so; clients re-initialize on it.
    assert.deepEqual((unknown.json as { error: unknown }).error, {
      code: JSONRPC.SESSION_NOT_FOUND,
      message: 'Session not found',
    });
    assert.notEqual(JSONRPC.SESSION_NOT_FOUND, JSONRPC.DENIED);
  });

  it('answers a modern request whose Mcp-Method header disagrees with the body with 400 and -32020', async () => {
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 3,
      method: 'tools/list',
      params: { _meta: MODERN_META },
    });
    const res = await post(gw.listener.url, body, modernHeaders('server/discover'));
    assert.equal(res.status, 400);
    assert.equal((res.json as { error: { code: number } }).error.code, -32020);
  });

  it('answers a modern tools/call whose Mcp-Name disagrees with the body with -32020', async () => {
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 4,
      method: 'tools/call',
      params: { name: 'probe__echo', arguments: { text: 'x' }, _meta: MODERN_META },
    });
    const res = await post(gw.listener.url, body, modernHeaders('tools/call', 'probe__hang'));
    assert.equal((res.json as { error: { code: number } }).error.code, -32020);
    const ok = await post(gw.listener.url, body, modernHeaders('tools/call', 'probe__echo'));
    assert.equal(ok.status, 200);
  });

  it('answers an unsupported modern version with -32022 and the supported list', async () => {
    const meta = { ...MODERN_META, 'io.modelcontextprotocol/protocolVersion': '2099-01-01' };
    const body = JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/list', params: { _meta: meta } });
    const res = await post(gw.listener.url, body, {
      ...modernHeaders('tools/list'),
      'mcp-protocol-version': '2099-01-01',
    });
    const err = (res.json as { error: { code: number; data: { supported: string[] } } }).error;
    assert.equal(err.code, -32022);
    assert.deepEqual(err.data.supported, ['2026-07-28']);
  });

  it('answers GET and DELETE without a session with 405, and a wrong content type with 415', async () => {
    assert.equal((await fetch(gw.listener.url)).status, 405);
    assert.equal((await fetch(gw.listener.url, { method: 'DELETE' })).status, 405);
    const res = await post(gw.listener.url, initializeBody(), { 'content-type': 'text/plain' });
    assert.equal(res.status, 415);
  });
});
