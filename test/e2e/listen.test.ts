import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunningGateway } from '../../src/server.ts';
import { SseParser } from '../../src/transport/sse.ts';
import { NODE, post, probeUpstream, ROOT, startTestGateway } from '../helpers.ts';

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
    const res = await fetch(gw.listener.url, {
      method: 'POST',
      signal: abort.signal,
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...headers('subscriptions/listen'),
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 'sub-1',
        method: 'subscriptions/listen',
        params: { notifications: { toolsListChanged: true }, _meta: META },
      }),
    });
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
