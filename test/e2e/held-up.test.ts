import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { canonicalize } from '../../src/audit/jcs.ts';
import { openAuditStore } from '../../src/audit/open.ts';
import type { RunningGateway } from '../../src/server.ts';
import { auditFixture } from '../audit/helpers.ts';
import {
  httpClient,
  initializeBody,
  post,
  probeUpstream,
  startAuthTestGateway,
  startTestGateway,
  textOf,
} from '../helpers.ts';

// What outside testing tried and found holding; kept here so it keeps holding.

type Fixture = ReturnType<typeof auditFixture>;

const decisions = async (f: Fixture, tool: string) => {
  const store = await openAuditStore(f.setup);
  try {
    const head = await store.head();
    return (await store.entries(0, head.size))
      .map((e) => JSON.parse(e.leaf.toString()) as Record<string, unknown>)
      .filter((r) => r.type === 'decision' && r.tool === tool);
  } finally {
    await store.close();
  }
};

/** Every byte the audit log left on disk (database, WAL, keys' folder). */
const bytesUnder = (dir: string): Buffer =>
  Buffer.concat(
    readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => readFileSync(join(e.parentPath, e.name))),
  );

describe('an outer gateway in front of an inner one (each with its own audit log)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-held-up-'));
  const innerAudit = auditFixture('sqlite');
  const outerAudit = auditFixture('sqlite');
  let inner: RunningGateway;
  let outer: Awaited<ReturnType<typeof startAuthTestGateway>>;
  before(async () => {
    inner = await startTestGateway({ upstreams: { probe: probeUpstream() }, audit: innerAudit.raw });
    outer = await startAuthTestGateway(
      { upstreams: { remote: { transport: 'http', url: inner.listener.url } }, audit: outerAudit.raw },
      dir,
    );
  });
  after(async () => {
    await outer.running.close();
    await inner.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps the caller's token out of the audit log of both gateways", async () => {
    const { token } = await outer.token('agent-held', ['remote__probe__echo']);
    const client = await httpClient(outer.url, 'legacy', { authorization: `Bearer ${token}` });
    const result = await client.callTool({ name: 'remote__probe__echo', arguments: { text: 'hello' } });
    assert.equal(textOf(result), 'hello');
    await client.close();
    const signature = token.split('.')[2]!;
    for (const f of [outerAudit, innerAudit]) {
      const onDisk = bytesUnder(f.dir);
      // The search can find what is there: the tool name is stored in clear.
      assert.ok(onDisk.includes('probe__echo'), `no record of the call under ${f.dir}`);
      assert.equal(onDisk.includes(signature), false, `token signature found under ${f.dir}`);
      assert.equal(onDisk.includes(token), false);
    }
  });

  it('forwards exactly the arguments it decided on and recorded, whatever duplicate keys and __proto__ the body carries', async () => {
    const { token } = await outer.token('agent-dup', ['remote__probe__echo']);
    const auth = { authorization: `Bearer ${token}` };
    const init = await post(outer.url, initializeBody(), auth);
    const session = init.headers.get('mcp-session-id')!;
    const headers = { ...auth, 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' };
    await post(outer.url, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), headers);
    // Raw text: JSON.parse keeps the last duplicate and makes __proto__ an own key.
    const body =
      '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"remote__probe__echo",' +
      '"arguments":{"text":"first","text":"last","__proto__":{"polluted":true}}}}';
    const res = await post(outer.url, body, headers);
    const answered = (res.json ?? JSON.parse(res.text.split('data: ')[1] ?? 'null')) as {
      result?: unknown;
      error?: unknown;
    };
    const outerRecords = await decisions(outerAudit, 'remote__probe__echo');
    const mine = outerRecords.at(-1)!;
    const seen = JSON.parse('{"text":"first","text":"last","__proto__":{"polluted":true}}') as unknown;
    assert.equal(mine.argsHash, createHash('sha256').update(canonicalize(seen)).digest('hex'));
    assert.equal(answered.error, undefined, JSON.stringify(answered.error));
    assert.equal(textOf(answered.result), 'last');
    const innerRecords = await decisions(innerAudit, 'probe__echo');
    assert.ok(
      innerRecords.some((r) => r.argsHash === mine.argsHash),
      'the inner gateway received other arguments than the outer one decided on',
    );
  });
});
