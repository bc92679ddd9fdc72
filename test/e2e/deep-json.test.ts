import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PassThrough } from 'node:stream';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import type { RunningGateway } from '../../src/server.ts';
import { serveStdio } from '../../src/transport/stdio-listener.ts';
import { refusalRecords } from '../audit/helpers.ts';
import { initializeBody, post, probeUpstream, startTestGateway } from '../helpers.ts';

const MILLION = 1_000_000;
const deepArray = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
};

describe('a body nested a million levels deep', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-deep-'));
  const auditPath = join(dir, 'audit.db');
  let gw: RunningGateway;
  // Refusals are written as counts when the gateway closes (or the interval ends): each test closes its own.
  beforeEach(async () => {
    gw = await startTestGateway({ upstreams: { probe: probeUpstream() }, audit: { path: auditPath } });
  });
  afterEach(() => gw.close());
  after(() => rmSync(dir, { recursive: true, force: true }));

  const refusals = () => refusalRecords(auditPath, dir);

  it('gets -32600 over HTTP with an audit record, and the gateway keeps serving', async () => {
    const before = (await refusals()).length;
    const res = await post(gw.listener.url, deepArray(MILLION));
    assert.equal(res.status, 400);
    assert.equal((res.json as { error: { code: number } }).error.code, -32600);
    assert.equal((await post(gw.listener.url, initializeBody())).status, 200);
    await gw.close();
    const recorded = (await refusals()).slice(before);
    assert.equal(recorded.length, 1);
    assert.equal(recorded[0]!.code, 'ERR_INVALID_REQUEST');
    assert.equal(recorded[0]!.status, 400);
    assert.equal(recorded[0]!.reason, 'nested deeper than 128');
    assert.equal(recorded[0]!.count, 1);
  });

  it('gets -32600, not an internal error, when the depth hides in a modern tool call', async () => {
    const body = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"probe__echo","arguments":{"text":${deepArray(MILLION)}},"_meta":${JSON.stringify(MODERN_META)}}}`;
    const res = await post(gw.listener.url, body, {
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/call',
      'mcp-name': 'probe__echo',
    });
    assert.equal(res.status, 400);
    assert.equal((res.json as { error: { code: number } }).error.code, -32600);
  });

  it('gets -32600 over stdio with an audit record, and the next message is answered', async () => {
    const before = (await refusals()).length;
    const input = new PassThrough();
    const output = new PassThrough();
    const done = serveStdio(gw.gateway, { input, output, maxLineBytes: 4 << 20 });
    const lines = createInterface({ input: output })[Symbol.asyncIterator]();
    const next = async () => JSON.parse((await lines.next()).value as string) as Record<string, unknown>;

    input.write(`${deepArray(MILLION)}\n`);
    const refused = await next();
    assert.deepEqual(refused.error, { code: -32600, message: 'Invalid Request' });
    input.write(`${initializeBody(2)}\n`);
    const answered = await next();
    assert.equal(answered.id, 2);
    assert.ok(answered.result);
    input.end();
    await done;
    await gw.close();
    const recorded = (await refusals()).slice(before);
    assert.equal(recorded.length, 1);
    assert.equal(recorded[0]!.remoteAddress, 'stdio');
    assert.equal(recorded[0]!.reason, 'nested deeper than 128');
    assert.equal(recorded[0]!.count, 1);
  });
});
