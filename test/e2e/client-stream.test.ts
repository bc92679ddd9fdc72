import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { mkdtempSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { validateConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/observability/log.ts';
import { SseParser } from '../../src/protocol/sse.ts';
import { type RunningGateway, startGateway } from '../../src/server.ts';
import { NODE, PERMIT_ALL_POLICY, post, ROOT, serverEntry, textOf } from '../helpers.ts';

const HELD = 'server request held for the client stream';
const GAVE_UP = 'server request failed: no client stream';
const UPSTREAM_GOT_ROOTS = 'Updated allowed directories from MCP roots';
const UPSTREAM_ROOTS_FAILED = 'Failed to request initial roots';

type Line = { msg: string; line?: string; code?: string; method?: string };

/** A gateway in front of the filesystem server (its own per session, so it asks the client for roots). */
async function startWithLog(clientStreamWaitMs: number) {
  const logs = new EventEmitter();
  const log = createLogger('debug', (l) => {
    const entry = JSON.parse(l) as Line;
    logs.emit('line', entry);
  });
  const start = realpathSync(mkdtempSync(join(tmpdir(), 'portcullis-fs-start-')));
  const config = validateConfig({
    listen: { host: '127.0.0.1', port: 0, clientStreamWaitMs },
    policy: { files: [PERMIT_ALL_POLICY] },
    audit: { path: join(mkdtempSync(join(tmpdir(), 'portcullis-test-audit-')), 'audit.db') },
    upstreams: {
      fs: {
        transport: 'stdio',
        command: NODE,
        args: [serverEntry('@modelcontextprotocol/server-filesystem'), start],
        isolation: 'session',
        // The roots the client names later are folders the test makes in /tmp, which a sandbox's
        // private /tmp would not show: this test is about the client stream, so no sandbox.
        sandbox: 'off',
      },
    },
  });
  const gw = await startGateway({ config, baseDir: ROOT }, log, { banner: false });
  /** The first log line that matches one of `matchers`, in the order they are given. */
  const first = (...matchers: ((l: Line) => boolean)[]): Promise<{ which: number; line: Line }> =>
    new Promise((resolve) => {
      const onLine = (l: Line) => {
        const which = matchers.findIndex((m) => m(l));
        if (which < 0) return;
        logs.off('line', onLine);
        resolve({ which, line: l });
      };
      logs.on('line', onLine);
    });
  return { gw, first, start };
}

const upstreamSaid = (text: string) => (l: Line) => l.msg === 'upstream stderr' && !!l.line?.includes(text);
const gatewaySaid = (msg: string) => (l: Line) => l.msg === msg;

async function initializeWithRoots(url: string): Promise<Record<string, string>> {
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: {
      protocolVersion: '2025-11-25',
      capabilities: { roots: { listChanged: true } },
      clientInfo: { name: 'roots-client', version: '1' },
    },
  });
  const res = await post(url, body);
  assert.equal(res.status, 200);
  return { 'mcp-session-id': res.headers.get('mcp-session-id')!, 'mcp-protocol-version': '2025-11-25' };
}

/** Opens the session's GET stream and resolves with the first server request that arrives on it. */
async function openStream(url: string, session: Record<string, string>, signal: AbortSignal) {
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...session }, signal });
  assert.equal(res.status, 200);
  const events = new EventEmitter();
  const parser = new SseParser((data) => events.emit('message', JSON.parse(data)));
  const decoder = new TextDecoder();
  void (async () => {
    for await (const chunk of res.body!) parser.push(decoder.decode(chunk as Uint8Array, { stream: true }));
  })().catch(() => {});
  const [request] = (await once(events, 'message')) as [{ id: string; method: string }];
  return request;
}

describe('a server request sent before the client opened its GET stream', () => {
  let running: Awaited<ReturnType<typeof startWithLog>>;
  let gw: RunningGateway;
  const streams = new AbortController();
  before(async () => {
    running = await startWithLog(60_000);
    gw = running.gw;
  });
  after(async () => {
    streams.abort();
    await gw.close();
  });

  it('is held until the stream opens, then delivered, and the answer reaches the upstream', async () => {
    const outcome = running.first(gatewaySaid(HELD), upstreamSaid(UPSTREAM_ROOTS_FAILED));
    const session = await initializeWithRoots(gw.listener.url);
    const { which, line } = await outcome;
    assert.equal(which, 0, 'held, not failed at once');
    assert.equal(line.method, 'roots/list');

    const request = await openStream(gw.listener.url, session, streams.signal);
    assert.equal(request.method, 'roots/list');
    const roots = realpathSync(mkdtempSync(join(tmpdir(), 'portcullis-fs-root-')));
    const applied = running.first(upstreamSaid(UPSTREAM_GOT_ROOTS));
    const answer = {
      jsonrpc: '2.0',
      id: request.id,
      result: { roots: [{ uri: pathToFileURL(roots).href }] },
    };
    assert.equal((await post(gw.listener.url, JSON.stringify(answer), session)).status, 202);
    await applied;

    const call = {
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'fs__list_allowed_directories' },
    };
    const listed = await post(gw.listener.url, JSON.stringify(call), session);
    const text = textOf((listed.json as { result: unknown }).result);
    assert.ok(text.includes(roots), text);
    assert.ok(!text.includes(running.start), text);
  });
});

describe('a server request whose client never opens a GET stream', () => {
  let running: Awaited<ReturnType<typeof startWithLog>>;
  before(async () => {
    running = await startWithLog(1);
  });
  after(() => running.gw.close());

  it('fails after the configured hold with ERR_CLIENT_STREAM_UNAVAILABLE, and the upstream is told', async () => {
    const gaveUp = running.first(gatewaySaid(GAVE_UP), upstreamSaid(UPSTREAM_ROOTS_FAILED));
    const told = running.first(upstreamSaid(UPSTREAM_ROOTS_FAILED));
    await initializeWithRoots(running.gw.listener.url);
    const { which, line } = await gaveUp;
    assert.equal(which, 0, 'the gateway gave up on its own hold');
    assert.equal(line.code, 'ERR_CLIENT_STREAM_UNAVAILABLE');
    assert.match((await told).line.line ?? '', /Client stream unavailable/);
  });
});
