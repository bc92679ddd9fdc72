import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SseParser } from '../../src/protocol/sse.ts';
import type { RunningGateway } from '../../src/server.ts';
import { SqliteRevocationStore } from '../../src/state/sqlite.ts';
import { NODE, post, probeUpstream, ROOT, startAuthTestGateway, startTestGateway } from '../helpers.ts';

const META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
};
const headers = (method: string, name?: string) => ({
  'mcp-protocol-version': '2026-07-28',
  'mcp-method': method,
  ...(name ? { 'mcp-name': name } : {}),
});

/** Opens a modern `subscriptions/listen` for tool list changes, subscription id `sub-1`. */
const listenForToolChanges = (url: string, extra: Record<string, string>, signal?: AbortSignal) =>
  fetch(url, {
    method: 'POST',
    ...(signal ? { signal } : {}),
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers('subscriptions/listen'),
      ...extra,
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 'sub-1',
      method: 'subscriptions/listen',
      params: { notifications: { toolsListChanged: true }, _meta: META },
    }),
  });

describe('subscriptions/listen across several upstreams', () => {
  let gw: RunningGateway;
  before(async () => {
    gw = await startTestGateway({
      upstreams: {
        conf: {
          transport: 'stdio',
          command: NODE,
          args: [join(ROOT, 'test/fixtures/conformance-server.ts'), '--stdio'],
        },
        probe: probeUpstream(),
      },
    });
  });
  after(() => gw.close());

  it('acknowledges, then relays an upstream list change under the client subscription id', {
    timeout: 20_000,
  }, async () => {
    const abort = new AbortController();
    const res = await listenForToolChanges(gw.listener.url, {}, abort.signal);
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const events: { method: string; params: { _meta: Record<string, unknown> } }[] = [];
    const parser = new SseParser((d) => events.push(JSON.parse(d)));
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    const next = async () => {
      const { value } = await reader.read();
      parser.push(decoder.decode(value));
    };
    while (events.length < 1) await next();
    assert.equal(events[0]!.method, 'notifications/subscriptions/acknowledged');

    const trigger = JSON.stringify({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'conf__test_trigger_tool_change', arguments: {}, _meta: META },
    });
    const called = await post(
      gw.listener.url,
      trigger,
      headers('tools/call', 'conf__test_trigger_tool_change'),
    );
    assert.equal(called.status, 200);
    while (events.length < 2) await next();
    assert.equal(events[1]!.method, 'notifications/tools/list_changed');
    assert.equal(events[1]!.params._meta['io.modelcontextprotocol/subscriptionId'], 'sub-1');
    abort.abort();
  });
});

describe('a listen whose caller is revoked', () => {
  let dir: string;
  let gw: Awaited<ReturnType<typeof startAuthTestGateway>>;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-listen-revoke-'));
    gw = await startAuthTestGateway(
      {
        upstreams: {
          conf: {
            transport: 'stdio',
            command: NODE,
            args: [join(ROOT, 'test/fixtures/conformance-server.ts'), '--stdio'],
          },
        },
      },
      dir,
    );
  });
  after(async () => {
    await gw.running.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('relays nothing more once the token is revoked, and ends the stream', { timeout: 20_000 }, async () => {
    const tools = ['conf__test_trigger_tool_change'];
    const listener = await gw.token('agent-1', tools);
    const other = await gw.token('agent-1', tools);
    const res = await listenForToolChanges(gw.url, { authorization: `Bearer ${listener.token}` });
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const events: { method?: string; result?: unknown }[] = [];
    const parser = new SseParser((d) => events.push(JSON.parse(d)));
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let ended = false;
    /** Reads until `n` events arrived or the stream ended. */
    const readUntil = async (n: number) => {
      while (!ended && events.length < n) {
        const next = await reader.read();
        if (next.done) ended = true;
        else parser.push(decoder.decode(next.value));
      }
    };
    const trigger = () =>
      post(
        gw.url,
        JSON.stringify({
          jsonrpc: '2.0',
          id: 2,
          method: 'tools/call',
          params: { name: 'conf__test_trigger_tool_change', arguments: {}, _meta: META },
        }),
        {
          ...headers('tools/call', 'conf__test_trigger_tool_change'),
          authorization: `Bearer ${other.token}`,
        },
      );
    await readUntil(1);
    assert.equal(events[0]?.method, 'notifications/subscriptions/acknowledged');
    assert.equal((await trigger()).status, 200);
    await readUntil(2);
    assert.equal(events[1]?.method, 'notifications/tools/list_changed');

    const store = new SqliteRevocationStore(join(dir, 'state.db'));
    await store.revoke({ kind: 'jti', value: listener.jti, revokedAt: Date.now() });
    await store.close();
    assert.equal((await trigger()).status, 200);
    // Read to the end: the stream of a revoked caller ends, and nothing it carried after the revocation is a change.
    await readUntil(Number.POSITIVE_INFINITY);
    assert.ok(ended, 'the revoked caller’s stream ended');
    assert.deepEqual(
      events.slice(2).filter((e) => e.method === 'notifications/tools/list_changed'),
      [],
    );
    await reader.cancel().catch(() => {});
  });
});
