import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, realpathSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/client';
import { JSONRPC } from '../../src/errors.ts';
import {
  failsWith,
  httpClient,
  NODE,
  ownFolderSandbox,
  runCli,
  serverEntry,
  signallingLogger,
  startAuthTestGateway,
  textOf,
} from '../helpers.ts';

/** Every call errors in Cedar (an integer overflow no validator sees): the engine fails closed on each. */
const BROKEN_POLICY = `
@id("permit-all") permit(principal, action, resource);
@id("broken") forbid(principal, action, resource) when { 9223372036854775807 + 1 > 0 };
`;

const APPROVAL_POLICY = `
@id("reads") permit(principal, action in Action::"tools/call", resource is Tool)
when { resource.tier == "read" };

@id("write-needs-approval")
@obligation("approval")
permit(principal, action in Action::"tools/call", resource is Tool)
when { resource.tier == "write" && !context.approval.granted };

@id("write-approved")
permit(principal, action in Action::"tools/call", resource is Tool)
when { resource.tier == "write" && context.approval.granted };
`;

const reason = { 'io.portcullis/reason': 'incident 42: policy engine down' };
const TOOLS = ['fs__write_file', 'fs__read_text_file', 'fs__list_directory'];

interface Setup {
  client: Client;
  log: ReturnType<typeof signallingLogger>;
  configPath: string;
  dir: string;
  sandbox: string;
  close(): Promise<void>;
}

/** A token gateway in front of the real filesystem server, its config on disk for the CLI, its log lines as signals. */
async function setUp(policy: string, approvals: Record<string, unknown> = {}): Promise<Setup> {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'pc-breakglass-')));
  const sandbox = realpathSync(mkdtempSync(join(tmpdir(), 'pc-breakglass-sandbox-')));
  writeFileSync(join(dir, 'policy.cedar'), policy);
  const config = {
    upstreams: {
      fs: {
        transport: 'stdio',
        command: NODE,
        args: [serverEntry('@modelcontextprotocol/server-filesystem'), sandbox],
        sandbox: ownFolderSandbox(sandbox),
      },
    },
    policy: { files: [join(dir, 'policy.cedar')], trustAnnotations: ['fs'] },
    audit: { path: join(dir, 'audit.db') },
    approvals: {
      approvers: { operators: ['alice', 'bob', 'dave'] },
      breakGlass: { refreshMs: 100 },
      ...approvals,
    },
  };
  const log = signallingLogger();
  const gw = await startAuthTestGateway(config, dir, log);
  const configPath = join(dir, 'portcullis.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      ...config,
      identity: {
        mode: 'token',
        resource: 'https://gateway.test/mcp',
        gatewayTokens: { keyDir: join(dir, 'keys') },
      },
      state: { store: 'sqlite', path: join(dir, 'state.db') },
    }),
  );
  const { token } = await gw.token('carol', TOOLS);
  const client = await httpClient(gw.url, 'legacy', { authorization: `Bearer ${token}` });
  return {
    client,
    log,
    configPath,
    dir,
    sandbox,
    async close() {
      await client.close();
      await gw.running.close();
    },
  };
}

const cli = (s: Setup, ...args: string[]) => runCli(['breakglass', ...args, '--config', s.configPath]);

/** `breakglass open` as alice; the new window's id. */
async function request(s: Setup, scope: string, ttl = '15m'): Promise<string> {
  const r = await cli(s, 'open', '--scope', scope, '--ttl', ttl, '--reason', 'incident 42', '--as', 'alice');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { id: string; status: string };
  assert.equal(out.status, 'requested');
  return out.id;
}

/** The approvals still missing (bob's, then dave's, the second opening it); resolves once the gateway has the window in force. */
async function open(s: Setup, id: string, { bobApproved = false } = {}): Promise<void> {
  if (!bobApproved) assert.equal((await cli(s, 'approve', id, '--as', 'bob')).code, 0);
  const inForce = s.log.next('break-glass window in force');
  const second = await cli(s, 'approve', id, '--as', 'dave');
  assert.equal(second.code, 0, second.stderr);
  assert.equal(JSON.parse(second.stdout).status, 'open');
  await inForce;
}

const call = (s: Setup, name: string, args: Record<string, unknown>) =>
  s.client.callTool({ name, arguments: args, _meta: reason });

function leaves(s: Setup): Record<string, unknown>[] {
  const db = new DatabaseSync(join(s.dir, 'audit.db'), { readOnly: true });
  try {
    const rows = db.prepare('SELECT leaf FROM audit_entries ORDER BY idx').all();
    return rows.map((r) => JSON.parse(Buffer.from(r.leaf as Uint8Array).toString('utf8')));
  } finally {
    db.close();
  }
}

/** The last decision and outcome records of calls to `tool`. */
function lastCallRecords(s: Setup, tool: string) {
  const all = leaves(s).filter((r) => r.tool === tool);
  return {
    decision: all.filter((r) => r.type === 'decision').at(-1)!,
    outcome: all.filter((r) => r.type === 'outcome').at(-1)!,
  };
}

const breakGlassEvents = (s: Setup, id: string) =>
  leaves(s)
    .filter((r) => r.type === 'breakglass' && r.breakGlassId === id)
    .map((r) => String(r.event));

describe('break-glass while the policy engine fails (SDK client, real filesystem server)', () => {
  let s: Setup;
  let id: string;
  before(async () => {
    s = await setUp(BROKEN_POLICY);
  });
  after(async () => s?.close());

  it('denies every call while no window is open', async () => {
    await assert.rejects(
      call(s, 'fs__write_file', { path: join(s.sandbox, 'a.txt'), content: 'a' }),
      failsWith(JSONRPC.DENIED),
    );
    assert.equal(lastCallRecords(s, 'fs__write_file').outcome.error, 'ERR_POLICY_ENGINE');
  });

  it('refuses the requester as approver, and with one approval the window stays requested and calls stay denied', async () => {
    id = await request(s, 'tool:fs__write_file,tool:fs__read_text_file');
    const self = await cli(s, 'approve', id, '--as', 'alice');
    assert.equal(self.code, 1);
    assert.match(self.stderr, /ERR_BREAKGLASS_SELF/);
    const stranger = await cli(s, 'approve', id, '--as', 'mallory');
    assert.match(stranger.stderr, /ERR_APPROVER_NOT_ALLOWED/);
    assert.equal((await cli(s, 'approve', id, '--as', 'bob')).code, 0);
    const twice = await cli(s, 'approve', id, '--as', 'bob');
    assert.match(twice.stderr, /ERR_APPROVAL_DUPLICATE/);
    const listed = JSON.parse((await cli(s, 'list', '--json')).stdout) as {
      id: string;
      status: string;
      approvers: string[];
    }[];
    assert.deepEqual(
      listed.filter((w) => w.id === id).map((w) => [w.status, w.approvers]),
      [['requested', ['operator:bob']]],
    );
    await assert.rejects(
      call(s, 'fs__write_file', { path: join(s.sandbox, 'b.txt'), content: 'b' }),
      failsWith(JSONRPC.DENIED),
    );
    assert.deepEqual(breakGlassEvents(s, id), ['requested', 'refused', 'refused', 'approved', 'refused']);
    const refusals = leaves(s).filter((r) => r.type === 'breakglass' && r.event === 'refused');
    assert.deepEqual(
      refusals.map((r) => [r.approver, r.code]),
      [
        ['operator:alice', 'ERR_BREAKGLASS_SELF'],
        ['operator:mallory', 'ERR_APPROVER_NOT_ALLOWED'],
        ['operator:bob', 'ERR_APPROVAL_DUPLICATE'],
      ],
    );
  });

  it('opens with a second approver; then only calls in its scope pass, each marked break-glass in the audit log', async () => {
    const used = s.log.next('break-glass used');
    await open(s, id, { bobApproved: true });
    const path = join(s.sandbox, 'glass.txt');
    assert.match(
      textOf(await call(s, 'fs__write_file', { path, content: 'written under break-glass' })),
      /Successfully wrote/,
    );
    assert.equal(readFileSync(path, 'utf8'), 'written under break-glass');
    assert.match(textOf(await call(s, 'fs__read_text_file', { path })), /written under break-glass/);
    await used;
    for (const tool of ['fs__write_file', 'fs__read_text_file']) {
      const { decision, outcome } = lastCallRecords(s, tool);
      assert.equal(decision.breakGlassId, id, tool);
      assert.equal(outcome.breakGlassId, id, tool);
      assert.equal(outcome.status, 'ok');
      assert.deepEqual(decision.decision, {
        ...(decision.decision as object),
        effect: 'allow',
        determiningPolicies: ['builtin:break-glass'],
        overridden: { code: 'ERR_POLICY_ENGINE', determiningPolicies: ['permit-all'], obligations: [] },
      });
    }
    await assert.rejects(call(s, 'fs__list_directory', { path: s.sandbox }), failsWith(JSONRPC.DENIED));
    const outside = lastCallRecords(s, 'fs__list_directory');
    assert.equal(outside.decision.breakGlassId, null);
    assert.equal(outside.outcome.error, 'ERR_POLICY_ENGINE');
    assert.deepEqual(breakGlassEvents(s, id).slice(-2), ['opened', 'used']);
  });

  it('closes on `breakglass close`; calls in its former scope are denied again', async () => {
    const gone = s.log.next('break-glass window no longer in force');
    const closed = await cli(s, 'close', id, '--as', 'bob', '--comment', 'engine fixed');
    assert.equal(closed.code, 0, closed.stderr);
    assert.equal(JSON.parse(closed.stdout).status, 'closed');
    await gone;
    await assert.rejects(
      call(s, 'fs__write_file', { path: join(s.sandbox, 'c.txt'), content: 'c' }),
      failsWith(JSONRPC.DENIED),
    );
    assert.equal(lastCallRecords(s, 'fs__write_file').decision.breakGlassId, null);
    assert.equal(breakGlassEvents(s, id).at(-1), 'closed');
    const again = await cli(s, 'close', id, '--as', 'bob');
    assert.match(again.stderr, /ERR_BREAKGLASS_ENDED/);
    assert.deepEqual(JSON.parse((await cli(s, 'list', '--json')).stdout), []);
  });

  it('lets nothing through, break-glass or not, once the audit log is gone', async () => {
    await open(s, await request(s, 'tool:fs__write_file'));
    unlinkSync(join(s.dir, 'audit.db'));
    const path = join(s.sandbox, 'unaudited.txt');
    await assert.rejects(
      call(s, 'fs__write_file', { path, content: 'x' }),
      failsWith(JSONRPC.DENIED, /Request denied/),
    );
    assert.throws(() => readFileSync(path), { code: 'ENOENT' });
  });
});

describe('break-glass and the approval obligation', () => {
  let s: Setup;
  before(async () => {
    // A held call would end in ERR_APPROVAL_PENDING after half a second.
    s = await setUp(APPROVAL_POLICY, { holdMs: 500 });
  });
  after(async () => s?.close());

  it('lets a write in scope through without holding it for approval', async () => {
    const id = await request(s, 'tool:fs__write_*');
    await open(s, id);
    const path = join(s.sandbox, 'unheld.txt');
    assert.match(textOf(await call(s, 'fs__write_file', { path, content: 'no wait' })), /Successfully wrote/);
    const { decision } = lastCallRecords(s, 'fs__write_file');
    assert.equal(decision.breakGlassId, id);
    assert.deepEqual((decision.decision as { overridden: unknown }).overridden, {
      code: 'ERR_APPROVAL_REQUIRED',
      determiningPolicies: ['write-needs-approval'],
      obligations: ['approval'],
    });
    assert.equal(leaves(s).filter((r) => r.type === 'approval').length, 0, 'no approval was asked for');
    await cli(s, 'close', id, '--as', 'dave');
  });

  it('closes itself at its expiry: the gateway records it expired, and a write waits for approval again', async () => {
    const id = await request(s, 'tool:fs__write_file', '1s');
    const expired = s.log.next('break-glass expired');
    assert.equal((await cli(s, 'approve', id, '--as', 'bob')).code, 0);
    assert.equal((await cli(s, 'approve', id, '--as', 'dave')).code, 0);
    await expired;
    assert.equal(breakGlassEvents(s, id).at(-1), 'expired');
    await assert.rejects(
      call(s, 'fs__write_file', { path: join(s.sandbox, 'late.txt'), content: 'late' }),
      failsWith(JSONRPC.DENIED, /Approval pending/),
    );
    const all = JSON.parse((await cli(s, 'list', '--all', '--json')).stdout) as {
      id: string;
      status: string;
    }[];
    assert.equal(all.find((w) => w.id === id)?.status, 'expired');
  });
});
