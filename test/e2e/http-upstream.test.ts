import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { encodeHeaderValue } from '../../src/protocol/modern.ts';
import type { RunningGateway } from '../../src/server.ts';
import {
  type Era,
  httpClient,
  NODE,
  post,
  probeUpstream,
  ROOT,
  startTestGateway,
  textOf,
} from '../helpers.ts';

// A gateway is itself a Streamable HTTP MCP server of both eras: the inner one
// serves as a real HTTP upstream for the outer one.
describe('HTTP upstreams', () => {
  let inner: RunningGateway;
  let outer: RunningGateway;
  before(async () => {
    inner = await startTestGateway({ upstreams: { probe: probeUpstream() } });
    outer = await startTestGateway({ upstreams: { remote: { transport: 'http', url: inner.listener.url } } });
  });
  after(async () => {
    await outer.close();
    await inner.close();
  });

  for (const era of ['legacy', 'modern'] as Era[]) {
    it(`relays a ${era} client's tool call to an HTTP upstream and back`, async () => {
      const client = await httpClient(outer.listener.url, era);
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === 'remote__probe__echo'));
      const result = await client.callTool({
        name: 'remote__probe__echo',
        arguments: { text: `via http ${era}` },
      });
      assert.equal(textOf(result), `via http ${era}`);
      await client.close();
    });
  }

  it('fails a call with a clear error when the HTTP upstream is gone, and stays up', async () => {
    const dead = await startTestGateway({
      upstreams: { gone: { transport: 'http', url: 'http://127.0.0.1:9/mcp' } },
    });
    try {
      const client = await httpClient(dead.listener.url, 'legacy');
      await assert.rejects(client.callTool({ name: 'gone__echo', arguments: {} }), /Upstream unavailable/);
      await client.close();
    } finally {
      await dead.close();
    }
  });
});

describe('a legacy-only HTTP upstream (the SDK stateful transport)', () => {
  let child: ChildProcess;
  let gw: RunningGateway;
  before(async () => {
    child = spawn(NODE, [join(ROOT, 'bench/echo-server.ts'), '--port', '0'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const line = await new Promise<string>((resolve) =>
      createInterface({ input: child.stdout! }).once('line', resolve),
    );
    const { url } = JSON.parse(line) as { url: string };
    // A probe that waited for the timeout would hang this test far past its own limit.
    gw = await startTestGateway({ upstreams: { old: { transport: 'http', url, timeoutMs: 600_000 } } });
  });
  after(async () => {
    await gw.close();
    child.kill();
  });

  it('falls back from the server/discover probe to initialize at once, not after the timeout', {
    timeout: 60_000,
  }, async () => {
    const client = await httpClient(gw.listener.url, 'legacy');
    const result = await client.callTool({ name: 'old__echo', arguments: { text: 'legacy over http' } });
    assert.equal(textOf(result), 'legacy over http');
    await client.close();
  });
});

describe('a modern HTTP upstream with x-mcp-header arguments', () => {
  let child: ChildProcess;
  let gw: RunningGateway;
  before(async () => {
    const fixture = join(ROOT, 'test/fixtures/conformance-server.ts');
    child = spawn(NODE, [fixture, '--port', '0'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const line = await new Promise<string>((resolve) =>
      createInterface({ input: child.stdout! }).once('line', resolve),
    );
    const { url } = JSON.parse(line) as { url: string };
    gw = await startTestGateway({ upstreams: { conf: { transport: 'http', url } } });
  });
  after(async () => {
    await gw.close();
    child.kill();
  });

  it("sends the Mcp-Param headers the upstream's schema asks for, even for a legacy client that never sends them", async () => {
    const client = await httpClient(gw.listener.url, 'legacy');
    await client.listTools();
    const result = await client.callTool({
      name: 'conf__test_x_mcp_header',
      arguments: { region: 'eu-west-1' },
    });
    assert.equal(textOf(result), 'region=eu-west-1');
    const unicode = await client.callTool({
      name: 'conf__test_x_mcp_header',
      arguments: { region: 'Zürich' },
    });
    assert.equal(textOf(unicode), 'region=Zürich');
    await client.close();
  });
});

describe('Mcp-Param headers on the way to an HTTP upstream', () => {
  let child: ChildProcess;
  let proxy: http.Server;
  let gw: RunningGateway;
  /** What reached the upstream: each POST's headers and JSON-RPC method. */
  const seen: { method: string; headers: http.IncomingHttpHeaders }[] = [];
  before(async () => {
    const fixture = join(ROOT, 'test/fixtures/conformance-server.ts');
    child = spawn(NODE, [fixture, '--port', '0'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const line = await new Promise<string>((resolve) =>
      createInterface({ input: child.stdout! }).once('line', resolve),
    );
    const upstream = new URL((JSON.parse(line) as { url: string }).url);
    // A recording proxy in front of the real upstream.
    proxy = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        if (req.method === 'POST') {
          const method = (JSON.parse(body.toString()) as { method?: string }).method ?? '';
          seen.push({ method, headers: req.headers });
        }
        const out = http.request(
          upstream,
          { method: req.method, headers: { ...req.headers, host: upstream.host } },
          (up) => {
            res.writeHead(up.statusCode ?? 502, up.headers);
            up.pipe(res);
          },
        );
        out.end(body);
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const port = (proxy.address() as AddressInfo).port;
    const url = `http://127.0.0.1:${port}${upstream.pathname}`;
    gw = await startTestGateway({ upstreams: { conf: { transport: 'http', url } } });
  });
  after(async () => {
    await gw.close();
    proxy.closeAllConnections();
    proxy.close();
    child.kill();
  });

  const paramHeadersOf = (h: http.IncomingHttpHeaders) =>
    Object.fromEntries(Object.entries(h).filter(([k]) => k.startsWith('mcp-param-')));

  it('forwards only the Mcp-Param headers the tool declares, with the values of the body', async () => {
    const body = {
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: {
        name: 'conf__test_x_mcp_header',
        arguments: { region: 'Zürich', level: 3 },
        _meta: {
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientCapabilities': {},
          'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
        },
      },
    };
    const res = await post(gw.listener.url, JSON.stringify(body), {
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/call',
      'mcp-name': 'conf__test_x_mcp_header',
      'mcp-param-region': encodeHeaderValue('Zürich'),
      'mcp-param-level': '3',
      'mcp-param-authorization': 'Bearer smuggled',
    });
    assert.equal(res.status, 200, res.text);
    assert.match(res.text, /region=Zürich/);
    const calls = seen.filter((s) => s.method === 'tools/call');
    assert.equal(calls.length, 1);
    assert.deepEqual(paramHeadersOf(calls[0]!.headers), { 'mcp-param-region': encodeHeaderValue('Zürich') });
  });
});
