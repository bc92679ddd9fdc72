import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/client';
import { JSONRPC } from '../../src/errors.ts';
import type { CallContext } from '../../src/pipeline/context.ts';
import type { Stage } from '../../src/pipeline/runner.ts';
import type { RunningGateway } from '../../src/server.ts';
import {
  failsWith,
  httpClient,
  NODE,
  ownFolderSandbox,
  probeUpstream,
  serverEntry,
  startTestGateway,
  textOf,
} from '../helpers.ts';

const sandbox = realpathSync(mkdtempSync(join(tmpdir(), 'pc-policy-sandbox-')));
const outside = realpathSync(mkdtempSync(join(tmpdir(), 'pc-policy-outside-')));
writeFileSync(join(sandbox, 'note.txt'), 'a harmless note\n');
writeFileSync(join(sandbox, 'secret.txt'), 'the launch codes\n');
writeFileSync(join(outside, 'other.txt'), 'outside the prefix\n');

const POLICY = `
@id("reads-with-reason")
permit(principal, action in Action::"tools/call", resource is Tool)
when { resource.tier == "read" && context.reason != "" };

@id("writes-need-approval")
@obligation("approval")
permit(principal, action in Action::"tools/call", resource is Tool)
when { resource.tier == "write" && context.reason != "" && resource != Tool::"fs__create_directory" };

@id("mkdir-without-approval")
permit(principal, action == Action::"tools/call:fs__create_directory", resource)
when { context.reason != "" };

@id("reads-inside-sandbox-only")
forbid(principal, action == Action::"tools/call:fs__read_text_file", resource)
unless { context.input.path like "${sandbox}/*" };

@id("loopback-http-only")
forbid(principal, action, resource)
unless { context.network.address.isLoopback() && context.network.transport == "http" };

@id("never-move")
forbid(principal, action == Action::"tools/call:fs__move_file", resource);

@id("no-egress-after-sensitive-read")
forbid(principal, action in Action::"tools/call", resource is Tool)
when { context.session.sensitiveRead && (resource.tier == "write" || resource.egress) };
`;

const reason = { 'io.portcullis/reason': 'ticket 42' };

/** What the audit stage will see: the decision and the error code of every call, by tool. */
const seen: { tool: unknown; code: string | undefined; decision: CallContext['decision'] }[] = [];
const recorder: Stage = {
  name: 'test-recorder',
  run(ctx) {
    if (ctx.request.method === 'tools/call') {
      seen.push({ tool: ctx.request.params?.name, code: ctx.error?.code, decision: ctx.decision });
    }
  },
};
const last = () => seen.at(-1)!;

describe('per-call authorization against the real filesystem server', () => {
  let gw: RunningGateway;
  let client: Client;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-policy-e2e-'));
    writeFileSync(join(dir, 'e2e.cedar'), POLICY);
    gw = await startTestGateway({
      upstreams: {
        fs: {
          transport: 'stdio',
          command: NODE,
          args: [serverEntry('@modelcontextprotocol/server-filesystem'), sandbox, outside],
          sandbox: {
            ...ownFolderSandbox(sandbox),
            writable: [sandbox, ownFolderSandbox(outside).writable[0]!],
          },
        },
      },
      policy: {
        files: [join(dir, 'e2e.cedar')],
        trustAnnotations: ['fs'],
        sensitive: [{ tool: 'fs__read_text_file', argument: 'path', pattern: '*secret*' }],
      },
      // Nobody approves here: a held write ends pending after this short hold.
      approvals: { holdMs: 100 },
    });
    (gw.gateway.pipeline.terminal as Stage[]).push(recorder);
    client = await httpClient(gw.listener.url, 'legacy');
  });
  after(async () => {
    await client?.close();
    await gw?.close();
  });

  it('lists only the tools the caller may use', async () => {
    const names = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('fs__read_text_file'));
    assert.ok(names.includes('fs__write_file'));
    assert.ok(!names.includes('fs__move_file'));
  });

  it('answers a hidden tool exactly like one that does not exist', async () => {
    const args = { source: join(sandbox, 'note.txt'), destination: join(sandbox, 'n2.txt') };
    let hidden: unknown;
    let missing: unknown;
    await client
      .callTool({ name: 'fs__move_file', arguments: args, _meta: reason })
      .catch((e) => (hidden = e));
    await client
      .callTool({ name: 'fs__no_such_tool', arguments: args, _meta: reason })
      .catch((e) => (missing = e));
    assert.deepEqual(
      [(hidden as { code: number }).code, (hidden as Error).message],
      [(missing as { code: number }).code, (missing as Error).message],
    );
  });

  it('allows a read tool with a declared reason', async () => {
    const res = await client.callTool({
      name: 'fs__read_text_file',
      arguments: { path: join(sandbox, 'note.txt') },
      _meta: reason,
    });
    assert.match(textOf(res), /harmless note/);
    assert.equal(last().decision?.effect, 'allow');
    assert.deepEqual(last().decision?.determiningPolicies, ['reads-with-reason']);
    assert.match(String(last().decision?.policySetHash), /^sha256:/);
  });

  it('denies a read tool without a reason', async () => {
    await assert.rejects(
      client.callTool({ name: 'fs__read_text_file', arguments: { path: join(sandbox, 'note.txt') } }),
      failsWith(JSONRPC.DENIED, /Denied by policy/),
    );
    assert.equal(last().code, 'ERR_POLICY_DENIED');
  });

  it('denies a path outside the prefix by an argument condition', async () => {
    await assert.rejects(
      client.callTool({
        name: 'fs__read_text_file',
        arguments: { path: join(outside, 'other.txt') },
        _meta: reason,
      }),
      failsWith(JSONRPC.DENIED, /Denied by policy/),
    );
    assert.deepEqual(last().decision?.determiningPolicies, ['reads-inside-sandbox-only']);
  });

  it('holds write_file for the approval its decision asks for, and ends it pending when nobody decides', async () => {
    await assert.rejects(
      client.callTool({
        name: 'fs__write_file',
        arguments: { path: join(sandbox, 'w.txt'), content: 'x' },
        _meta: reason,
      }),
      failsWith(JSONRPC.DENIED, /Approval pending/),
    );
    assert.equal(last().code, 'ERR_APPROVAL_PENDING');
    assert.deepEqual(last().decision?.obligations, ['approval']);
    assert.throws(() => readFileSync(join(sandbox, 'w.txt')), { code: 'ENOENT' });
  });

  it('rejects arguments that do not match the inputSchema before policy', async () => {
    await assert.rejects(
      client.callTool({ name: 'fs__read_text_file', arguments: { path: 42 }, _meta: reason }),
      failsWith(-32602, /argument `path` must be of type string/),
    );
    assert.equal(last().code, 'ERR_INVALID_ARGUMENTS');
    assert.equal(last().decision, undefined);
  });

  it('bounds deeply nested arguments, refuses a non-string reason and a non-ASCII tool name', async () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 40; i++) deep = { d: deep };
    await assert.rejects(
      client.callTool({
        name: 'fs__read_text_file',
        arguments: { path: join(sandbox, 'note.txt'), deep },
        _meta: reason,
      }),
      failsWith(-32602, /nested deeper than 32/),
    );
    assert.equal(last().code, 'ERR_INVALID_ARGUMENTS');
    await assert.rejects(
      client.callTool({
        name: 'fs__read_text_file',
        arguments: { path: join(sandbox, 'note.txt') },
        _meta: { 'io.portcullis/reason': 42 },
      }),
      failsWith(-32602, /reason must be a string/),
    );
    await assert.rejects(
      client.callTool({ name: 'fs__reád_text_file', arguments: {}, _meta: reason }),
      failsWith(-32602, /Unknown tool/),
    );
    assert.equal(last().code, 'ERR_UNKNOWN_TARGET');
  });

  it('rejects a lone surrogate in an argument value, an argument key or the reason as invalid params', async () => {
    const cases = [
      { arguments: { path: `${join(sandbox, 'note.txt')}\ud800` }, _meta: reason },
      { arguments: { path: join(sandbox, 'note.txt'), extra: { ['k\udc00']: 1 } }, _meta: reason },
      { arguments: { path: join(sandbox, 'note.txt') }, _meta: { 'io.portcullis/reason': 'why\ud83d' } },
    ];
    for (const c of cases) {
      await assert.rejects(
        client.callTool({ name: 'fs__read_text_file', ...c }),
        failsWith(-32602, /not well-formed Unicode/),
      );
      assert.equal(last().code, 'ERR_INVALID_ARGUMENTS');
      assert.equal(last().decision, undefined);
    }
  });

  it('denies a write-type tool after a sensitive read in the same session (exfiltration)', async () => {
    const fresh = await httpClient(gw.listener.url, 'legacy');
    try {
      const mkdir = (n: string) =>
        fresh.callTool({
          name: 'fs__create_directory',
          arguments: { path: join(sandbox, n) },
          _meta: reason,
        });
      await mkdir('before');
      const secret = await fresh.callTool({
        name: 'fs__read_text_file',
        arguments: { path: join(sandbox, 'secret.txt') },
        _meta: reason,
      });
      assert.match(textOf(secret), /launch codes/);
      // A forbid that surely applies hides the tool for this session: the same answer as a missing tool.
      await assert.rejects(mkdir('after'), failsWith(-32602, /Unknown tool/));
      assert.equal(last().code, 'ERR_UNKNOWN_TARGET');
      assert.deepEqual(last().decision?.determiningPolicies, ['no-egress-after-sensitive-read']);
      const names = (await fresh.listTools()).tools.map((t) => t.name);
      assert.ok(!names.includes('fs__create_directory'));
      assert.ok(names.includes('fs__read_text_file'));
    } finally {
      await fresh.close();
    }
  });
});

describe('deny by default', () => {
  it('a gateway without policies lists no tools and answers every call as unknown', async () => {
    const gw = await startTestGateway({ upstreams: { probe: probeUpstream() }, policy: { files: [] } });
    const client = await httpClient(gw.listener.url, 'legacy');
    try {
      assert.deepEqual((await client.listTools()).tools, []);
      await assert.rejects(
        client.callTool({ name: 'probe__echo', arguments: { text: 'x' } }),
        failsWith(-32602, /Unknown tool/),
      );
    } finally {
      await client.close();
      await gw.close();
    }
  });

  it('denies every call once the upstream tools show a policy naming a missing argument', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-policy-stale-'));
    writeFileSync(
      join(dir, 'p.cedar'),
      '@id("all") permit(principal, action, resource);\n' +
        '@id("typo") forbid(principal, action == Action::"tools/call:fs__write_file", resource) unless { context.input.pathh like "/tmp/*" };',
    );
    const gw = await startTestGateway({
      upstreams: {
        fs: {
          transport: 'stdio',
          command: NODE,
          args: [serverEntry('@modelcontextprotocol/server-filesystem'), sandbox],
          sandbox: ownFolderSandbox(sandbox),
        },
      },
      policy: { files: [join(dir, 'p.cedar')] },
    });
    (gw.gateway.pipeline.terminal as Stage[]).push(recorder);
    const client = await httpClient(gw.listener.url, 'legacy');
    try {
      assert.deepEqual((await client.listTools()).tools, []);
      await assert.rejects(
        client.callTool({ name: 'fs__read_text_file', arguments: { path: join(sandbox, 'note.txt') } }),
        failsWith(JSONRPC.DENIED, /^Denied$/),
      );
      assert.equal(last().code, 'ERR_POLICY_INVALID');
      assert.match(last().decision?.errors.join() ?? '', /attribute `input\.pathh` in context/);
    } finally {
      await client.close();
      await gw.close();
    }
  });

  it('refuses to start on a policy that does not validate, with the exact error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-policy-bad-'));
    writeFileSync(
      join(dir, 'bad.cedar'),
      '@id("bad") permit(principal, action, resource) when { principal.nope == 1 };',
    );
    await assert.rejects(
      startTestGateway({
        upstreams: { probe: probeUpstream() },
        policy: { files: [join(dir, 'bad.cedar')] },
      }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'ERR_CONFIG_INVALID');
        assert.match(err.message, /bad\.cedar:1: .*attribute `nope`/);
        return true;
      },
    );
  });
});
