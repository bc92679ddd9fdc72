import assert from 'node:assert/strict';
import { EventEmitter, on } from 'node:events';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/client';
import { openAuditStore } from '../../src/audit/open.ts';
import { JSONRPC } from '../../src/errors.ts';
import { type Logger, silentLogger } from '../../src/observability/log.ts';
import { SseParser } from '../../src/protocol/sse.ts';
import type { RunningGateway } from '../../src/server.ts';
import { parseJsonBody, UPSTREAM_MAX_JSON_DEPTH } from '../../src/upstream/http-body.ts';
import { auditFixture } from '../audit/helpers.ts';
import {
  FORBIDDEN_URI,
  type RawUpstream,
  startRawUpstream,
  WATCHED_URI,
} from '../fixtures/raw-http-upstream.ts';
import { httpClient, startTestGateway, textOf } from '../helpers.ts';

interface Warning {
  msg: string;
  fields: Record<string, unknown>;
}

/** A logger whose warnings a test can wait for. */
function warningLog() {
  const seen: Warning[] = [];
  const events = new EventEmitter();
  const log: Logger = {
    ...silentLogger,
    warn(msg, fields = {}) {
      seen.push({ msg, fields });
      events.emit('warn', { msg, fields });
    },
  };
  const warned = async (match: (w: Warning) => boolean): Promise<Warning> => {
    const earlier = seen.find(match);
    if (earlier) return earlier;
    for await (const [w] of on(events, 'warn')) if (match(w as Warning)) return w as Warning;
    throw new Error('unreachable');
  };
  return { log, warned };
}

const rpcError = async (call: Promise<unknown>): Promise<{ code: number; message: string }> => {
  try {
    await call;
  } catch (err) {
    return err as { code: number; message: string };
  }
  throw new Error('the call succeeded');
};

describe('an HTTP upstream that answers in the shapes real servers use', () => {
  let upstream: RawUpstream;
  let gw: RunningGateway;
  let client: Client;
  const { log, warned } = warningLog();
  before(async () => {
    upstream = await startRawUpstream();
    // An answer missed would otherwise be waited for this long: the tests must resolve from the answers.
    gw = await startTestGateway(
      { upstreams: { raw: { transport: 'http', url: upstream.url, timeoutMs: 600_000 } } },
      log,
    );
    client = await httpClient(gw.listener.url, 'legacy');
  });
  after(async () => {
    await client.close();
    await gw.close();
    await upstream.close();
  });

  for (const [tool, first] of [
    ['ndjson', 'first line'],
    ['batch', 'first item'],
  ]) {
    it(`relays every message of a ${tool} application/json body and answers the call from it`, {
      timeout: 20_000,
    }, async () => {
      const logged = new Promise<unknown>((resolve) =>
        client.setNotificationHandler('notifications/message', (n) => resolve(n.params.data)),
      );
      const result = await client.callTool({ name: `raw__${tool}`, arguments: {} });
      assert.equal(textOf(result), `${tool} answered`);
      assert.equal(await logged, first);
    });
  }

  for (const [tool, cause] of [
    ['garbage', /body is not JSON/],
    ['silent', /no response to this request in the body/],
  ] as const) {
    it(`answers a ${tool} body with a generic error and a warning naming the upstream and the cause`, {
      timeout: 20_000,
    }, async () => {
      const error = await rpcError(client.callTool({ name: `raw__${tool}`, arguments: {} }));
      assert.equal(error.code, JSONRPC.UPSTREAM_UNAVAILABLE);
      assert.match(error.message, /Upstream unavailable/);
      assert.doesNotMatch(error.message, /HTTP/);
      const warning = await warned((w) => /no answer/.test(w.msg) && cause.test(String(w.fields.cause)));
      assert.equal(warning.fields.upstream, 'raw');
      assert.equal(warning.fields.method, 'tools/call');
    });
  }

  it("answers a legacy client's subscribe from the acknowledgement that names the subscription with a string, then relays updates", {
    timeout: 20_000,
  }, async () => {
    const updated = new Promise<string>((resolve) =>
      client.setNotificationHandler('notifications/resources/updated', (n) => resolve(n.params.uri)),
    );
    await client.subscribeResource({ uri: WATCHED_URI });
    upstream.touch(WATCHED_URI);
    assert.equal(await updated, WATCHED_URI);
  });

  it("refuses a legacy client's subscribe with the upstream's own error, not a made-up success", {
    timeout: 20_000,
  }, async () => {
    const error = await rpcError(client.subscribeResource({ uri: FORBIDDEN_URI }));
    assert.equal(error.code, JSONRPC.INVALID_PARAMS);
    const warning = await warned((w) => /subscription/.test(w.msg));
    assert.equal(warning.fields.upstream, 'raw');
  });
});

describe('the audit record of a call whose HTTP body held no answer', () => {
  it('says the upstream gave no answer (it may have acted), not that it answered', {
    timeout: 20_000,
  }, async () => {
    const upstream = await startRawUpstream();
    const f = auditFixture('sqlite');
    const gw = await startTestGateway({
      upstreams: { raw: { transport: 'http', url: upstream.url, timeoutMs: 600_000 } },
      audit: f.raw,
    });
    try {
      const client = await httpClient(gw.listener.url, 'legacy');
      await rpcError(client.callTool({ name: 'raw__garbage', arguments: {} }));
      await client.close();
    } finally {
      await gw.close();
      await upstream.close();
    }
    const store = await openAuditStore(f.setup);
    try {
      const entries = await store.entries(0, (await store.head()).size);
      const outcome = entries
        .map((e) => JSON.parse(e.leaf.toString()) as Record<string, unknown>)
        .find((r) => r.type === 'outcome' && r.tool === 'raw__garbage');
      assert.equal(outcome?.status, 'error');
      assert.equal(outcome?.upstream, 'no-answer');
    } finally {
      await store.close();
    }
  });
});

describe('a modern listen through an upstream that names subscriptions with strings', () => {
  let upstream: RawUpstream;
  let gw: RunningGateway;
  before(async () => {
    upstream = await startRawUpstream();
    gw = await startTestGateway({
      upstreams: { raw: { transport: 'http', url: upstream.url, timeoutMs: 600_000 } },
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('relays the resource update under the client subscription id', { timeout: 20_000 }, async () => {
    const abort = new AbortController();
    const upstreamListening = upstream.nextListen();
    const res = await fetch(gw.listener.url, {
      method: 'POST',
      signal: abort.signal,
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': 'subscriptions/listen',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 'sub-9',
        method: 'subscriptions/listen',
        params: { notifications: { resourceSubscriptions: [WATCHED_URI] }, _meta: MODERN_META },
      }),
    });
    const events: { method: string; params: { uri?: string; _meta: Record<string, unknown> } }[] = [];
    const parser = new SseParser((d) => events.push(JSON.parse(d)));
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    await upstreamListening;
    upstream.touch(WATCHED_URI);
    while (!events.some((e) => e.method === 'notifications/resources/updated')) {
      const { value } = await reader.read();
      parser.push(decoder.decode(value));
    }
    const update = events.find((e) => e.method === 'notifications/resources/updated')!;
    assert.equal(update.params.uri, WATCHED_URI);
    assert.equal(update.params._meta['io.modelcontextprotocol/subscriptionId'], 'sub-9');
    abort.abort();
  });
});

const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
};

describe('reading an upstream body', () => {
  it('takes one message, a batch, or one message per line, and reports each part that is none', () => {
    const a = { jsonrpc: '2.0', method: 'notifications/message', params: {} };
    const b = { jsonrpc: '2.0', id: 7, result: {} };
    assert.deepEqual(parseJsonBody(JSON.stringify(b)), { messages: [b], problems: [] });
    assert.deepEqual(parseJsonBody(JSON.stringify([a, b])).messages, [a, b]);
    assert.deepEqual(parseJsonBody(`${JSON.stringify(a)}\r\n\n${JSON.stringify(b)}\n`).messages, [a, b]);
    const mixed = parseJsonBody(`${JSON.stringify(a)}\n{"secret-token-xyz\n${JSON.stringify({ id: 1 })}`);
    assert.deepEqual(mixed.messages, [a]);
    assert.equal(mixed.problems.length, 2);
    assert.match(mixed.problems[0]!, /^line 2 is not JSON/);
    assert.match(mixed.problems[1]!, /^line 3 is not a JSON-RPC message/);
    assert.deepEqual(parseJsonBody('  '), { messages: [], problems: [] });
    const garbage = parseJsonBody('"secret-token-xyz" and more');
    assert.match(garbage.problems[0]!, /^body is not JSON/);
    assert.doesNotMatch(garbage.problems.join(), /secret-token/);
  });

  it('refuses an answer nested deeper than the bound before parsing it, and keeps one at the bound', () => {
    const nested = (n: number) =>
      `{"jsonrpc":"2.0","id":1,"result":{"v":${'['.repeat(n - 2)}${']'.repeat(n - 2)}}}`;
    assert.equal(parseJsonBody(nested(UPSTREAM_MAX_JSON_DEPTH)).messages.length, 1);
    const deep = parseJsonBody(nested(1_000_000));
    assert.deepEqual(deep.messages, []);
    assert.deepEqual(deep.problems, [`body is not JSON: nested deeper than ${UPSTREAM_MAX_JSON_DEPTH}`]);
  });
});
