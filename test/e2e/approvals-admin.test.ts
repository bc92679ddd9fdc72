import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/client';
import pg from 'pg';
import { signWebhook, webhookKey } from '../../src/approval/webhook-signature.ts';
import { JSONRPC } from '../../src/errors.ts';
import {
  failsWith,
  httpClient,
  NODE,
  ownFolderSandbox,
  PG_URL,
  probeUpstream,
  ROOT,
  serverEntry,
  startAuthTestGateway,
  TEST_RESOURCE,
  textOf,
} from '../helpers.ts';

const DEFAULT_POLICY = join(ROOT, 'policies/default.cedar');
const TOOLS = ['fs__write_file', 'fs__read_text_file'];
const CHAT_SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
const reason = { 'io.portcullis/reason': 'ticket 9: notes' };

/** Approvers: alice and carol by their tokens' `sub`, and the chat user U42 through signed callbacks. */
const APPROVALS = {
  keepAliveMs: 100,
  approvers: { identities: [{ user: 'alice' }, { user: 'carol' }, { principal: 'webhook:chat:U42' }] },
  callbacks: [{ name: 'chat', secret: CHAT_SECRET }],
};

interface Reply {
  status: number;
  headers: Headers;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
}

/** One admin API request; `token` becomes a bearer credential, an object body is sent as JSON. */
async function api(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['content-type'] ??= 'application/json';
  const body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    ...(opts.body === undefined ? {} : { body }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : {} };
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
  result.catch(() => announce(''));
  return { held, result };
}

const fsUpstream = (sandbox: string) => ({
  transport: 'stdio',
  command: NODE,
  args: [serverEntry('@modelcontextprotocol/server-filesystem'), sandbox],
  sandbox: ownFolderSandbox(sandbox),
});

interface Setup {
  admin: string;
  client: Client;
  dir: string;
  sandbox: string;
  tokens: { alice: string; bob: string; carol: string };
  close(): Promise<void>;
}

/** A token gateway with default.cedar in front of the real filesystem server; carol calls, alice approves. */
async function setUp(): Promise<Setup> {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'pc-admin-approvals-')));
  const sandbox = realpathSync(mkdtempSync(join(tmpdir(), 'pc-admin-sandbox-')));
  const gw = await startAuthTestGateway(
    {
      upstreams: { fs: fsUpstream(sandbox) },
      policy: { files: [DEFAULT_POLICY], trustAnnotations: ['fs'] },
      audit: { path: join(dir, 'audit.db') },
      approvals: APPROVALS,
    },
    dir,
  );
  const mint = async (sub: string, tools: string[] = []) => (await gw.token(sub, tools)).token;
  const tokens = { alice: await mint('alice'), bob: await mint('bob'), carol: await mint('carol', TOOLS) };
  const client = await httpClient(gw.url, 'legacy', { authorization: `Bearer ${tokens.carol}` });
  let closed: Promise<void> | undefined;
  return {
    admin: gw.running.admin!.url,
    client,
    dir,
    sandbox,
    tokens,
    close() {
      closed ??= client.close().then(() => gw.running.close());
      return closed;
    },
  };
}

/** The approval records of an audit log (SQLite), in order, as their signed leaves hold them. */
function approvalRecords(dir: string): Record<string, unknown>[] {
  return auditLeaves(dir, 'approval');
}

function auditLeaves(dir: string, kind: string): Record<string, unknown>[] {
  const db = new DatabaseSync(join(dir, 'audit.db'), { readOnly: true });
  try {
    const rows = db.prepare('SELECT leaf FROM audit_entries WHERE kind = ? ORDER BY idx').all(kind);
    return rows.map((r) => JSON.parse(Buffer.from(r.leaf as Uint8Array).toString('utf8')));
  } finally {
    db.close();
  }
}

async function argsHashOf(s: Setup, id: string): Promise<string> {
  const shown = await api(s.admin, 'GET', `/approvals/${id}`, { token: s.tokens.alice });
  return (shown.body.approval as { argsHash: string }).argsHash;
}

describe('approvals through the admin API (SDK client, real filesystem server, default.cedar)', () => {
  let s: Setup;
  before(async () => {
    s = await setUp();
  });
  after(async () => s?.close());

  it('an approver lists and shows a held write, approves it bound to its argument hash, and the write completes', async () => {
    const path = join(s.sandbox, 'approved.txt');
    const { held, result } = heldCall(s.client, 'fs__write_file', { path, content: 'approved content' });
    const id = await held;
    const listed = await api(s.admin, 'GET', '/approvals', { token: s.tokens.alice });
    assert.equal(listed.status, 200);
    const entry = (listed.body.approvals as Record<string, unknown>[]).find((a) => a.id === id);
    assert.equal(entry?.status, 'pending');
    assert.equal(entry?.tool, 'fs__write_file');
    assert.equal('arguments' in (entry ?? {}), false, 'the list shows no argument values');
    const shown = await api(s.admin, 'GET', `/approvals/${id}`, { token: s.tokens.alice });
    const approval = shown.body.approval as { arguments: { content: string }; argsHash: string };
    assert.equal(approval.arguments.content, 'approved content');
    assert.equal(approval.argsHash, entry?.argsHash);
    const body = { argsHash: approval.argsHash, comment: 'looks fine' };
    const ok = await api(s.admin, 'POST', `/approvals/${id}/approve`, { token: s.tokens.alice, body });
    assert.deepEqual([ok.status, ok.body], [200, { id, status: 'granted', grants: 1, required: 1 }]);
    assert.match(textOf(await result), /Successfully wrote/);
    assert.equal(readFileSync(path, 'utf8'), 'approved content');
    const mine = approvalRecords(s.dir).filter((r) => r.approvalId === id);
    assert.deepEqual(
      mine.map((r) => r.event),
      ['requested', 'granted', 'consumed'],
    );
    assert.deepEqual([mine[1]!.channel, mine[1]!.comment], ['admin-api', 'looks fine']);
  });

  it('an approver denies with a comment and the held call is denied; a denial without one is refused', async () => {
    const path = join(s.sandbox, 'denied.txt');
    const { held, result } = heldCall(s.client, 'fs__write_file', { path, content: 'no' });
    const id = await held;
    const argsHash = await argsHashOf(s, id);
    const bare = await api(s.admin, 'POST', `/approvals/${id}/deny`, {
      token: s.tokens.alice,
      body: { argsHash },
    });
    assert.deepEqual([bare.status, bare.body.error?.code], [400, 'ERR_INVALID_PARAMS']);
    const body = { argsHash, comment: 'not today' };
    const denied = await api(s.admin, 'POST', `/approvals/${id}/deny`, { token: s.tokens.alice, body });
    assert.deepEqual([denied.status, denied.body.status], [200, 'denied']);
    await assert.rejects(result, failsWith(JSONRPC.DENIED, /Denied by an approver/));
    assert.throws(() => readFileSync(path), { code: 'ENOENT' });
    const again = await api(s.admin, 'POST', `/approvals/${id}/approve`, { token: s.tokens.alice, body });
    assert.deepEqual([again.status, again.body.error?.code], [409, 'ERR_APPROVAL_NOT_PENDING']);
  });

  it('refuses no token, a caller without the role, a wrong argument hash, self-approval and an unknown id, recording each decision refused', async () => {
    const { held, result } = heldCall(s.client, 'fs__write_file', {
      path: join(s.sandbox, 'r.txt'),
      content: 'x',
    });
    const id = await held;
    const argsHash = await argsHashOf(s, id);
    const approve = (token: string | undefined, body: unknown, target = id) =>
      api(s.admin, 'POST', `/approvals/${target}/approve`, { ...(token ? { token } : {}), body });

    const anonymous = await api(s.admin, 'GET', '/approvals');
    assert.deepEqual([anonymous.status, anonymous.body.error?.code], [401, 'ERR_AUTH_REQUIRED']);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer/);
    assert.equal((await approve(undefined, { argsHash })).status, 401);
    const forged = await api(s.admin, 'GET', '/approvals', { token: `${s.tokens.alice.slice(0, -4)}AAAA` });
    assert.equal(forged.status, 401);

    const stranger = await approve(s.tokens.bob, { argsHash });
    assert.deepEqual([stranger.status, stranger.body.error?.code], [403, 'ERR_APPROVER_NOT_ALLOWED']);
    const peek = await api(s.admin, 'GET', `/approvals/${id}`, { token: s.tokens.bob });
    assert.deepEqual([peek.status, peek.body.error?.code], [403, 'ERR_APPROVER_NOT_ALLOWED']);
    const mismatch = await approve(s.tokens.alice, { argsHash: '0'.repeat(64) });
    assert.deepEqual([mismatch.status, mismatch.body.error?.code], [409, 'ERR_APPROVAL_MISMATCH']);
    const self = await approve(s.tokens.carol, { argsHash });
    assert.deepEqual([self.status, self.body.error?.code], [403, 'ERR_APPROVAL_SELF']);
    const unknown = await approve(s.tokens.alice, { argsHash }, 'apr_nosuchapproval');
    assert.deepEqual([unknown.status, unknown.body.error?.code], [404, 'ERR_APPROVAL_UNKNOWN']);
    assert.equal(mismatch.body.error?.message, 'The approval does not match the call');

    const deny = { argsHash, comment: 'cleanup' };
    assert.equal(
      (await api(s.admin, 'POST', `/approvals/${id}/deny`, { token: s.tokens.alice, body: deny })).status,
      200,
    );
    await assert.rejects(result, failsWith(JSONRPC.DENIED));
    const refused = approvalRecords(s.dir).filter((r) => r.event === 'refused');
    const codes = refused.filter((r) => r.approvalId === id).map((r) => r.code);
    for (const code of ['ERR_APPROVER_NOT_ALLOWED', 'ERR_APPROVAL_MISMATCH', 'ERR_APPROVAL_SELF'])
      assert.ok(codes.includes(code), `${code} recorded`);
    assert.ok(
      refused.some((r) => r.approvalId === 'apr_nosuchapproval' && r.code === 'ERR_APPROVAL_UNKNOWN'),
    );
  });

  it('answers only the method each route takes, wants a bounded JSON body, and keeps health and metrics open', async () => {
    const token = s.tokens.alice;
    const wrongVerb = await api(s.admin, 'GET', '/approvals/apr_x/approve', { token });
    assert.deepEqual([wrongVerb.status, wrongVerb.headers.get('allow')], [405, 'POST']);
    const del = await api(s.admin, 'DELETE', '/approvals', { token });
    assert.deepEqual(
      [del.status, del.headers.get('allow'), del.body.error?.code],
      [405, 'GET', 'ERR_HTTP_METHOD_NOT_ALLOWED'],
    );
    assert.equal((await api(s.admin, 'GET', '/approvals/a/b/c', { token })).status, 404);
    const huge = { argsHash: 'x', comment: 'y'.repeat(70 * 1024) };
    const big = await api(s.admin, 'POST', '/approvals/apr_x/approve', { token, body: huge });
    assert.deepEqual([big.status, big.body.error?.code], [413, 'ERR_BODY_TOO_LARGE']);
    const text = { token, body: '{"argsHash":"x"}', headers: { 'content-type': 'text/plain' } };
    assert.equal((await api(s.admin, 'POST', '/approvals/apr_x/approve', text)).status, 415);
    const broken = await api(s.admin, 'POST', '/approvals/apr_x/approve', { token, body: '{"argsHash":' });
    assert.deepEqual([broken.status, broken.body.error?.code], [400, 'ERR_PARSE']);
    const extra = await api(s.admin, 'POST', '/approvals/apr_x/approve', {
      token,
      body: { argsHash: 'x', as: 'root' },
    });
    assert.deepEqual([extra.status, extra.body.error?.code], [400, 'ERR_INVALID_PARAMS']);
    assert.equal((await fetch(`${s.admin}/healthz`)).status, 200);
    assert.equal((await fetch(`${s.admin}/metrics`)).status, 200);
  });
});

describe('an admin API under a policy set with no permit for the admin actions', () => {
  it('refuses an approver the approval list (deny by default)', async () => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'pc-admin-nopermit-')));
    const policy = join(dir, 'reads.cedar');
    writeFileSync(
      policy,
      '@id("reads") permit(principal, action in Action::"tools/call", resource is Tool);',
    );
    const gw = await startAuthTestGateway(
      { upstreams: { probe: probeUpstream() }, policy: { files: [policy] }, approvals: APPROVALS },
      dir,
    );
    try {
      const { token } = await gw.token('alice', []);
      const listed = await api(gw.running.admin!.url, 'GET', '/approvals', { token });
      assert.deepEqual([listed.status, listed.body.error?.code], [403, 'ERR_POLICY_DENIED']);
      assert.equal(listed.body.error?.message, 'Denied by policy');
    } finally {
      await gw.running.close();
    }
  });
});

describe('decisions POSTed back by a chat bot, signed with the callback secret', () => {
  let s: Setup;
  before(async () => {
    s = await setUp();
  });
  after(async () => s?.close());

  let counter = 0;
  const signed = (body: unknown, secret = CHAT_SECRET, id = `msg_admin_${++counter}`) => {
    const text = JSON.stringify(body);
    const headers = signWebhook(webhookKey(secret), {
      id,
      timestamp: Math.floor(Date.now() / 1000),
      body: text,
    });
    return { body: text, headers: { ...headers, 'content-type': 'application/json' } };
  };
  const post = (source: string, message: ReturnType<typeof signed>) =>
    api(s.admin, 'POST', `/approvals/callback/${source}`, message);

  it('approves with a signed callback, refuses its replay (409) and a forged one (401), and records them', async () => {
    const path = join(s.sandbox, 'chat.txt');
    const { held, result } = heldCall(s.client, 'fs__write_file', { path, content: 'from chat' });
    const id = await held;
    const message = signed({ approvalId: id, decision: 'approve', approver: 'U42', comment: 'ok from chat' });
    const ok = await post('chat', message);
    assert.deepEqual([ok.status, ok.body.status], [200, 'granted']);
    assert.match(textOf(await result), /Successfully wrote/);
    assert.equal(readFileSync(path, 'utf8'), 'from chat');

    const replay = await post('chat', message);
    assert.deepEqual([replay.status, replay.body.error?.code], [409, 'ERR_WEBHOOK_REPLAYED']);
    const forgedBody = { approvalId: id, decision: 'approve', approver: 'U42' };
    const forged = await post('chat', signed(forgedBody, `whsec_${Buffer.alloc(32, 8).toString('base64')}`));
    assert.deepEqual([forged.status, forged.body.error?.code], [401, 'ERR_WEBHOOK_SIGNATURE']);
    assert.equal((await post('elsewhere', signed(forgedBody))).status, 401);
    const stranger = await post('chat', signed({ ...forgedBody, approver: 'U99' }));
    assert.deepEqual([stranger.status, stranger.body.error?.code], [403, 'ERR_APPROVER_NOT_ALLOWED']);
    const nonsense = await post('chat', signed({ approve: 'everything' }));
    assert.deepEqual([nonsense.status, nonsense.body.error?.code], [400, 'ERR_WEBHOOK_BAD_BODY']);

    const records = approvalRecords(s.dir);
    const granted = records.find((r) => r.approvalId === id && r.event === 'granted');
    assert.deepEqual([granted?.approver, granted?.channel], ['webhook:chat:U42', 'webhook']);
    const refusedCodes = records.filter((r) => r.event === 'refused').map((r) => [r.approver, r.code]);
    assert.deepEqual(refusedCodes, [
      ['webhook:chat:U99', 'ERR_APPROVER_NOT_ALLOWED'],
      ['webhook:chat', 'ERR_WEBHOOK_BAD_BODY'],
    ]);
  });

  it('counts the unsigned, forged and replayed ones with the refusals at the door, written when the gateway stops', async () => {
    const { dir } = s;
    await s.close();
    const reasons = auditLeaves(dir, 'refusal').map((r) => [r.reason, r.count]);
    assert.deepEqual(reasons.filter(([why]) => String(why).startsWith('callback')).sort(), [
      ['callback (unknown source): ERR_WEBHOOK_SIGNATURE', 1],
      ['callback chat: ERR_WEBHOOK_REPLAYED', 1],
      ['callback chat: ERR_WEBHOOK_SIGNATURE', 1],
    ]);
  });
});

interface Served {
  url: string;
  adminUrl: string;
  stop(): Promise<void>;
}

/** `portcullis serve --config FILE` in a process of its own; resolves once it says it listens. */
async function serve(configPath: string): Promise<Served> {
  const child: ChildProcess = spawn(
    NODE,
    [join(ROOT, 'bin/portcullis.js'), 'serve', '--config', configPath],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = await new Promise<{ url: string; adminUrl: string }>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.includes('"event":"listening"'));
      if (line) resolve(JSON.parse(line));
    });
    void exited.then((code) => reject(new Error(`serve exited (${code}) before listening: ${err}`)));
  });
  return {
    ...ready,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      assert.equal(await exited, 0, err);
    },
  };
}

/** Drops the tables and functions of the state and audit stores this test made (names start with `prefix`). */
async function dropPg(prefix: string): Promise<void> {
  const client = new pg.Client(PG_URL);
  await client.connect();
  try {
    const like = `${prefix.replace(/_/g, '\\_')}%`;
    const tables = await client.query('SELECT tablename FROM pg_tables WHERE tablename LIKE $1', [like]);
    for (const { tablename } of tables.rows) await client.query(`DROP TABLE IF EXISTS ${tablename} CASCADE`);
    const fns = await client.query('SELECT proname FROM pg_proc WHERE proname LIKE $1', [like]);
    for (const { proname } of fns.rows) await client.query(`DROP FUNCTION IF EXISTS ${proname} CASCADE`);
  } finally {
    await client.end();
  }
}

describe('two gateway processes sharing PostgreSQL: held on one, approved through the other', () => {
  const prefix = `adm14_${randomBytes(4).toString('hex')}`;
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'pc-admin-replicas-')));
  const sandbox = realpathSync(mkdtempSync(join(tmpdir(), 'pc-admin-replicas-sandbox-')));
  const served: Served[] = [];
  let client: Client | undefined;
  after(async () => {
    await client?.close();
    for (const s of served) await s.stop();
    await dropPg(prefix);
    rmSync(dir, { recursive: true, force: true });
    rmSync(sandbox, { recursive: true, force: true });
  });

  it('a write held on gateway A is approved through gateway B admin API and completes on A', async () => {
    const identity = { mode: 'token', resource: TEST_RESOURCE, gatewayTokens: { keyDir: join(dir, 'keys') } };
    const config = {
      listen: { host: '127.0.0.1', port: 0 },
      identity,
      state: { store: 'postgres', url: PG_URL, prefix: `${prefix}_state` },
      audit: {
        store: 'postgres',
        url: PG_URL,
        table: `${prefix}_audit`,
        path: join(dir, 'audit-keys', 'audit.db'),
      },
      upstreams: { fs: fsUpstream(sandbox) },
      policy: { files: [DEFAULT_POLICY], trustAnnotations: ['fs'] },
      approvals: APPROVALS,
      log: { level: 'error' },
    };
    for (const name of ['a', 'b']) writeFileSync(join(dir, `${name}.json`), JSON.stringify(config));
    // Tokens first: the gateway's signing key is made once, before either process reads the folder.
    const minted = await startAuthTestGateway({ upstreams: { probe: probeUpstream() }, identity }, dir);
    const carol = (await minted.token('carol', TOOLS)).token;
    const alice = (await minted.token('alice', [])).token;
    await minted.running.close();

    const a = await serve(join(dir, 'a.json'));
    served.push(a);
    const b = await serve(join(dir, 'b.json'));
    served.push(b);
    client = await httpClient(a.url, 'legacy', { authorization: `Bearer ${carol}` });
    const path = join(sandbox, 'replicated.txt');
    const { held, result } = heldCall(client, 'fs__write_file', { path, content: 'approved elsewhere' });
    const id = await held;

    const shown = await api(b.adminUrl, 'GET', `/approvals/${id}`, { token: alice });
    assert.equal(shown.status, 200, JSON.stringify(shown.body));
    const { argsHash } = shown.body.approval as { argsHash: string };
    const body = { argsHash, comment: 'approved on B' };
    const ok = await api(b.adminUrl, 'POST', `/approvals/${id}/approve`, { token: alice, body });
    assert.deepEqual([ok.status, ok.body.status], [200, 'granted']);
    assert.match(textOf(await result), /Successfully wrote/);
    assert.equal(readFileSync(path, 'utf8'), 'approved elsewhere');

    // One audit log for both: A's request and use, B's grant.
    const pool = new pg.Client(PG_URL);
    await pool.connect();
    try {
      const { rows } = await pool.query(
        `SELECT decision FROM ${prefix}_audit_entries WHERE kind = 'approval' ORDER BY idx`,
      );
      assert.deepEqual(
        rows.map((r) => r.decision),
        ['requested', 'granted', 'consumed'],
      );
    } finally {
      await pool.end();
    }
  });
});
