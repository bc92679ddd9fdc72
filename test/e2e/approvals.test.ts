import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { JSONRPC } from '../../src/errors.ts';
import {
  failsWith,
  httpClient,
  NODE,
  ownFolderSandbox,
  runCli,
  serverEntry,
  startAuthTestGateway,
  textOf,
} from '../helpers.ts';

const POLICY = `
@id("reads")
permit(principal, action in Action::"tools/call", resource is Tool)
when { resource.tier == "read" && context.reason != "" };

@id("write-needs-approval")
@obligation("approval")
permit(principal, action in Action::"tools/call", resource is Tool)
when {
  resource.tier == "write" && context.reason != "" && !context.approval.granted &&
  resource != Tool::"fs__create_directory"
};

@id("mkdir-needs-two-approvers")
@obligation("approval")
@approvals("2")
permit(principal, action == Action::"tools/call:fs__create_directory", resource)
when { context.reason != "" && !context.approval.granted };

@id("write-approved")
permit(principal, action in Action::"tools/call", resource is Tool)
when { resource.tier == "write" && context.approval.granted };
`;

const reason = { 'io.portcullis/reason': 'ticket 7: update the notes' };
const TOOLS = ['fs__write_file', 'fs__create_directory', 'fs__read_text_file'];

interface Setup {
  client: Client;
  url: string;
  token: string;
  stopGateway(): Promise<void>;
  configPath: string;
  dir: string;
  sandbox: string;
  close(): Promise<void>;
}

/** A token gateway in front of the real filesystem server, its config also on disk for the CLI. */
async function setUp(approvals: Record<string, unknown>, sub = 'carol', policy = POLICY): Promise<Setup> {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'pc-approvals-')));
  const sandbox = realpathSync(mkdtempSync(join(tmpdir(), 'pc-approvals-sandbox-')));
  writeFileSync(join(dir, 'approvals.cedar'), policy);
  const config = {
    upstreams: {
      fs: {
        transport: 'stdio',
        command: NODE,
        args: [serverEntry('@modelcontextprotocol/server-filesystem'), sandbox],
        sandbox: ownFolderSandbox(sandbox),
      },
    },
    policy: { files: [join(dir, 'approvals.cedar')], trustAnnotations: ['fs'] },
    audit: { path: join(dir, 'audit.db') },
    approvals: { approvers: { operators: ['alice', 'bob', 'carol'] }, ...approvals },
  };
  const gw = await startAuthTestGateway(config, dir);
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
  const { token } = await gw.token(sub, TOOLS);
  const client = await httpClient(gw.url, 'legacy', { authorization: `Bearer ${token}` });
  return {
    client,
    url: gw.url,
    token,
    configPath,
    dir,
    sandbox,
    stopGateway: () => gw.running.close(),
    async close() {
      await client.close();
      await gw.running.close();
    },
  };
}

/** Calls a tool and resolves `held` with the approval id from the first progress notification of the wait. */
function heldCall(client: Client, name: string, args: Record<string, unknown>) {
  let announce!: (id: string) => void;
  const held = new Promise<string>((resolve) => (announce = resolve));
  const result = client.callTool(
    { name, arguments: args, _meta: reason },
    {
      onprogress: (p: { message?: string }) => {
        const id = /apr_[A-Za-z0-9_-]+/.exec(p.message ?? '')?.[0];
        if (id) announce(id);
      },
      resetTimeoutOnProgress: true,
    },
  );
  // A call that ends before it was ever held (refused) must not leave `held` hanging forever.
  result.catch(() => announce(''));
  return { held, result };
}

const cli = (s: Setup, ...args: string[]) => runCli(['approvals', ...args, '--config', s.configPath]);

function auditLeaves(s: Setup): Record<string, unknown>[] {
  const db = new DatabaseSync(join(s.dir, 'audit.db'), { readOnly: true });
  try {
    const rows = db.prepare('SELECT leaf FROM audit_entries ORDER BY idx').all();
    return rows.map((r) => JSON.parse(Buffer.from((r as { leaf: Uint8Array }).leaf).toString('utf8')));
  } finally {
    db.close();
  }
}

function auditEvents(s: Setup): string[] {
  const db = new DatabaseSync(join(s.dir, 'audit.db'), { readOnly: true });
  try {
    const rows = db.prepare("SELECT decision FROM audit_entries WHERE kind = 'approval' ORDER BY idx").all();
    return rows.map((r) => String((r as { decision: string }).decision));
  } finally {
    db.close();
  }
}

describe('a write held for approval, approved through the CLI (SDK client, real filesystem server)', () => {
  let s: Setup;
  before(async () => {
    s = await setUp({ keepAliveMs: 100 });
  });
  after(async () => s?.close());

  it('waits, is approved by an operator and completes; the log shows the request, the grant and the use', async () => {
    const path = join(s.sandbox, 'approved.txt');
    const { held, result } = heldCall(s.client, 'fs__write_file', { path, content: 'approved content' });
    const id = await held;
    const shown = await cli(s, 'show', id, '--json');
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(JSON.parse(shown.stdout).arguments.content, 'approved content');
    const ok = await cli(s, 'approve', id, '--as', 'alice', '--comment', 'looks fine');
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(textOf(await result), /Successfully wrote/);
    assert.equal(readFileSync(path, 'utf8'), 'approved content');
    assert.deepEqual(auditEvents(s).slice(-3), ['requested', 'granted', 'consumed']);
    // Decided again when the grant was used: the record names the set, which the log holds before it.
    const leaves = auditLeaves(s);
    const used = leaves.findIndex(
      (r) => r.type === 'approval' && r.event === 'consumed' && r.approvalId === id,
    );
    assert.ok(used >= 0, 'the use is recorded');
    const hash = (leaves[used]!.redecision as { policySetHash: string }).policySetHash;
    assert.match(hash, /^sha256:[0-9a-f]{64}$/);
    const set = leaves.findIndex((r) => r.type === 'policy-set' && r.policySetHash === hash);
    assert.ok(set >= 0 && set < used, `the set at ${set}, the use at ${used}`);
  });

  it('a second identical call after an approval was used waits for an approval of its own', async () => {
    const args = { path: join(s.sandbox, 'twice.txt'), content: 'same' };
    const first = heldCall(s.client, 'fs__write_file', args);
    const firstId = await first.held;
    assert.equal((await cli(s, 'approve', firstId, '--as', 'alice')).code, 0);
    await first.result;
    const second = heldCall(s.client, 'fs__write_file', args);
    const secondId = await second.held;
    assert.notEqual(secondId, firstId);
    assert.equal((await cli(s, 'deny', secondId, '--as', 'bob', '--comment', 'once was enough')).code, 0);
    await assert.rejects(second.result, failsWith(JSONRPC.DENIED, /Denied by an approver/));
  });

  it('a denied call fails with the approver denial and writes nothing', async () => {
    const path = join(s.sandbox, 'denied.txt');
    const { held, result } = heldCall(s.client, 'fs__write_file', { path, content: 'no' });
    const id = await held;
    const denied = await cli(s, 'deny', id, '--as', 'bob', '--comment', 'not today');
    assert.equal(denied.code, 0, denied.stderr);
    await assert.rejects(result, failsWith(JSONRPC.DENIED, /Denied by an approver/));
    assert.throws(() => readFileSync(path), { code: 'ENOENT' });
    const again = await cli(s, 'approve', id, '--as', 'alice');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /ERR_APPROVAL_NOT_PENDING/);
  });

  it('refuses self-approval, an operator without the role, a wrong argument hash and an unknown id, each recorded', async () => {
    const path = join(s.sandbox, 'refusals.txt');
    const { held, result } = heldCall(s.client, 'fs__write_file', { path, content: 'x' });
    const id = await held;
    const self = await cli(s, 'approve', id, '--as', 'carol');
    assert.match(self.stderr, /ERR_APPROVAL_SELF/);
    const stranger = await cli(s, 'approve', id, '--as', 'mallory');
    assert.match(stranger.stderr, /ERR_APPROVER_NOT_ALLOWED/);
    const mismatch = await cli(s, 'approve', id, '--as', 'alice', '--args-hash', '0'.repeat(64));
    assert.match(mismatch.stderr, /ERR_APPROVAL_MISMATCH/);
    const unknown = await cli(s, 'approve', 'apr_nosuchapproval', '--as', 'alice');
    assert.match(unknown.stderr, /ERR_APPROVAL_UNKNOWN/);
    for (const r of [self, stranger, mismatch, unknown]) assert.equal(r.code, 1);
    assert.equal((await cli(s, 'deny', id, '--as', 'alice', '--comment', 'cleanup')).code, 0);
    await assert.rejects(result, failsWith(JSONRPC.DENIED));
    assert.equal(auditEvents(s).filter((e) => e === 'refused').length >= 3, true);
  });

  it('holds a 2026-07-28 client the same way, with progress on its stream', async () => {
    const modern = await httpClient(s.url, 'modern', { authorization: `Bearer ${s.token}` });
    try {
      const path = join(s.sandbox, 'modern.txt');
      const { held, result } = heldCall(modern, 'fs__write_file', { path, content: 'modern' });
      const id = await held;
      assert.equal((await cli(s, 'approve', id, '--as', 'alice')).code, 0);
      assert.match(textOf(await result), /Successfully wrote/);
    } finally {
      await modern.close();
    }
  });

  it('needs two distinct approvers where the policy says @approvals("2")', async () => {
    const path = join(s.sandbox, 'two-approvers');
    const { held, result } = heldCall(s.client, 'fs__create_directory', { path });
    const id = await held;
    assert.equal((await cli(s, 'approve', id, '--as', 'alice')).code, 0);
    const listed = JSON.parse((await cli(s, 'list', '--json')).stdout) as {
      id: string;
      grants: number;
      status: string;
    }[];
    assert.deepEqual(
      listed.filter((a) => a.id === id).map((a) => [a.status, a.grants]),
      [['pending', 1]],
    );
    const twice = await cli(s, 'approve', id, '--as', 'alice');
    assert.match(twice.stderr, /ERR_APPROVAL_DUPLICATE/);
    assert.equal((await cli(s, 'approve', id, '--as', 'bob')).code, 0);
    assert.match(textOf(await result), /Successfully created directory/);
  });
});

describe('approvals that outlive the wait', () => {
  it('a client that gave up retries the identical call and uses the approval granted meanwhile, once', async () => {
    const s = await setUp({ holdMs: 200 });
    try {
      const args = { path: join(s.sandbox, 'later.txt'), content: 'granted after the caller gave up' };
      const call = () => s.client.callTool({ name: 'fs__write_file', arguments: args, _meta: reason });
      const pending = await call().catch(
        (e: unknown) => e as { code: number; data?: { approvalId?: string } },
      );
      assert.equal((pending as { code: number }).code, JSONRPC.DENIED);
      const id = (pending as { data?: { approvalId?: string } }).data?.approvalId;
      assert.match(String(id), /^apr_/);
      assert.equal((await cli(s, 'approve', String(id), '--as', 'alice')).code, 0);
      assert.match(textOf(await call()), /Successfully wrote/);
      // Used up: the same call again is held anew, and ends pending with a new id.
      const again = await call().catch((e: unknown) => e as { data?: { approvalId?: string } });
      assert.notEqual((again as { data?: { approvalId?: string } }).data?.approvalId, id);
      // A different call cannot use a grant made for another.
      const other = (await call().catch((e: unknown) => e)) as { data?: { approvalId?: string } };
      const otherId = String(other.data?.approvalId);
      assert.equal((await cli(s, 'approve', otherId, '--as', 'alice')).code, 0);
      await assert.rejects(
        s.client.callTool({
          name: 'fs__write_file',
          arguments: { ...args, content: 'changed' },
          _meta: reason,
        }),
        failsWith(JSONRPC.DENIED, /Approval pending/),
      );
    } finally {
      await s.close();
    }
  });

  it('an approval nobody decides expires, and the waiting call is denied', async () => {
    const s = await setUp({ ttlMs: 1000, keepAliveMs: 100 });
    try {
      const { held, result } = heldCall(s.client, 'fs__write_file', {
        path: join(s.sandbox, 'x'),
        content: 'x',
      });
      const id = await held.catch(() => '');
      await assert.rejects(result, failsWith(JSONRPC.DENIED, /Approval expired/));
      const late = await cli(s, 'approve', id || 'apr_none', '--as', 'alice');
      assert.equal(late.code, 1);
      assert.ok(auditEvents(s).includes('expired'));
    } finally {
      await s.close();
    }
  });

  it('a gateway that shuts down while a call waits answers it cleanly, and its approval cannot be used afterwards', async () => {
    const s = await setUp({ keepAliveMs: 100 });
    const { held, result } = heldCall(s.client, 'fs__write_file', {
      path: join(s.sandbox, 'y'),
      content: 'y',
    });
    const id = await held;
    const outcome = result.catch((e: unknown) => e);
    await s.stopGateway();
    await assert.rejects(Promise.reject(await outcome), failsWith(JSONRPC.DENIED, /Approval abandoned/));
    await s.client.close().catch(() => {});
    const late = await cli(s, 'approve', id, '--as', 'alice');
    assert.match(late.stderr, /ERR_APPROVAL_NOT_PENDING/);
  });
});

const CONFIRM_POLICY = `
@id("mkdir-if-the-user-confirms")
@obligation("confirm")
permit(principal, action == Action::"tools/call:fs__create_directory", resource)
when { context.reason != "" };
`;

/** A v1 SDK client (what most deployed clients ship) whose user answers each elicitation with `answer`. */
async function confirmingClient(s: Setup, answer: 'accept' | 'decline'): Promise<V1Client> {
  const client = new V1Client({ name: 'confirmer', version: '1.0.0' }, { capabilities: { elicitation: {} } });
  client.setRequestHandler(ElicitRequestSchema, async () =>
    answer === 'accept' ? { action: 'accept', content: { confirm: true } } : { action: 'decline' },
  );
  await client.connect(
    new V1Transport(new URL(s.url), { requestInit: { headers: { authorization: `Bearer ${s.token}` } } }),
  );
  return client;
}

describe('a call the policy asks the user to confirm (@obligation("confirm"), MCP elicitation)', () => {
  let s: Setup;
  before(async () => {
    s = await setUp({}, 'carol', CONFIRM_POLICY);
  });
  after(async () => s?.close());

  it('goes ahead once the user confirms, and the log records a confirmation, not an approval', async () => {
    const client = await confirmingClient(s, 'accept');
    try {
      const path = join(s.sandbox, 'confirmed');
      const res = await client.callTool({ name: 'fs__create_directory', arguments: { path }, _meta: reason });
      assert.match(textOf(res), /Successfully created directory/);
      assert.equal(auditEvents(s).at(-1), 'confirmed');
    } finally {
      await client.close();
    }
  });

  it('is denied when the user declines', async () => {
    const client = await confirmingClient(s, 'decline');
    try {
      const path = join(s.sandbox, 'declined');
      await assert.rejects(
        client.callTool({ name: 'fs__create_directory', arguments: { path }, _meta: reason }),
        failsWith(JSONRPC.DENIED, /did not confirm/),
      );
      assert.throws(() => readFileSync(path), { code: 'ENOENT' });
    } finally {
      await client.close();
    }
  });

  it('is denied when the client offers no elicitation', async () => {
    await assert.rejects(
      s.client.callTool({
        name: 'fs__create_directory',
        arguments: { path: join(s.sandbox, 'n') },
        _meta: reason,
      }),
      failsWith(JSONRPC.DENIED, /cannot confirm/),
    );
  });
});
