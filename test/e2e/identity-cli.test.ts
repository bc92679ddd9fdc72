import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { loadConfigFile } from '../../src/config/load.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { type RunningGateway, startGateway } from '../../src/server.ts';
import {
  httpClient,
  initializeBody,
  NODE,
  PERMIT_ALL_POLICY,
  post,
  probeUpstream,
  ROOT,
  runCli,
  textOf,
  wrapClient,
} from '../helpers.ts';

const BIN = join(ROOT, 'bin/portcullis.js');
const cli = (args: string[]) => {
  const r = spawnSync(NODE, [BIN, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout.trim(), err: r.stderr };
};

describe('portcullis token issue, revoke and keys rotate against a running gateway', () => {
  let dir: string;
  let configPath: string;
  let gw: RunningGateway;
  const issue = (sub: string, extra: string[] = []) =>
    cli([
      'token',
      'issue',
      '--config',
      configPath,
      '--sub',
      sub,
      '--tools',
      'probe__echo',
      '--ttl',
      '10m',
      '--reason',
      'e2e',
      ...extra,
    ]);
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-cli-'));
    configPath = join(dir, 'portcullis.yaml');
    writeFileSync(
      configPath,
      stringify({
        listen: { host: '127.0.0.1', port: 0 },
        identity: {
          mode: 'token',
          resource: 'https://gw.test/mcp',
          gatewayTokens: { keyDir: 'keys', maxTtlSeconds: 3600 },
          localToken: 'file:token.txt',
        },
        state: { store: 'sqlite', path: 'state.db' },
        upstreams: { probe: probeUpstream() },
        policy: { files: [PERMIT_ALL_POLICY] },
      }),
    );
    gw = await startGateway(loadConfigFile(configPath), silentLogger, { banner: false });
  });
  after(async () => {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const init = (token: string) =>
    post(gw.listener.url, initializeBody(), { authorization: `Bearer ${token}` });

  it('mints a token the gateway accepts, and refuses a ttl above the configured maximum', async () => {
    const r = issue('agent-1');
    assert.equal(r.code, 0, r.err);
    assert.equal((await init(r.out)).status, 200);
    const tooLong = issue('agent-1', ['--ttl', '2h']);
    assert.equal(tooLong.code, 2);
  });

  it('names the prompts and resources a token may use, and none when they are left out', () => {
    const claims = (token: string) =>
      JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    const r = issue('agent-5', ['--prompts', 'probe__a, probe__b', '--resources', 'memory://*']);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(claims(r.out).allowed_prompts, ['probe__a', 'probe__b']);
    assert.deepEqual(claims(r.out).allowed_resources, ['memory://*']);
    const toolsOnly = claims(issue('agent-5').out);
    assert.deepEqual([toolsOnly.allowed_prompts, toolsOnly.allowed_resources], [[], []]);
  });

  it('revokes by jti from the next request on', async () => {
    const r = issue('agent-2', ['--json']);
    const { token, jti } = JSON.parse(r.out) as { token: string; jti: string };
    assert.equal((await init(token)).status, 200);
    assert.equal(cli(['revoke', '--config', configPath, '--jti', jti]).code, 0);
    assert.equal((await init(token)).status, 401);
    assert.equal(cli(['revoke', '--config', configPath, '--jti', 'a', '--sub', 'b']).code, 2);
  });

  it('rotates keys with overlap: tokens of the old key and of the new key both work', async () => {
    const before = issue('agent-3').out;
    const rotated = cli(['keys', 'rotate', '--config', configPath]);
    assert.equal(rotated.code, 0, rotated.err);
    const { kid, retired } = JSON.parse(rotated.out) as { kid: string; retired: string[] };
    assert.equal(retired.length, 1);
    const afterToken = issue('agent-3').out;
    const header = JSON.parse(Buffer.from(afterToken.split('.')[0]!, 'base64url').toString()) as {
      kid: string;
    };
    assert.equal(header.kid, kid);
    assert.equal((await init(before)).status, 200);
    assert.equal((await init(afterToken)).status, 200);
    const jwks = (await (await fetch(new URL('/.well-known/jwks.json', gw.listener.url))).json()) as {
      keys: unknown[];
    };
    // The retired and the new token key; the key results are signed with is published apart.
    assert.equal(jwks.keys.length, 2);
  });

  it('wrap identifies its local caller by the configured token, and refuses to start without one', async () => {
    await assert.rejects(async () => {
      const c = await wrapClient(configPath);
      await c.close();
    });
    writeFileSync(join(dir, 'token.txt'), `${issue('local-user').out}\n`);
    const client = await wrapClient(configPath);
    const { tools } = await client.listTools();
    assert.deepEqual(
      tools.map((t) => t.name),
      ['probe__echo'],
    );
    assert.equal(
      textOf(await client.callTool({ name: 'probe__echo', arguments: { text: 'local' } })),
      'local',
    );
    await client.close();
  });
});

/** The demo's printed write waits; its printed approve command (with the id filled in) lets it through. */
async function writeThroughApproval(info: { mcpUrl: string; token: string; tryNext: string[] }) {
  const client = await httpClient(info.mcpUrl, 'legacy', { authorization: `Bearer ${info.token}` });
  try {
    const write = info.tryNext.find((c) => c.includes('fs__write_file'))!;
    const args = JSON.parse(/--tool-args-json '([^']+)'/.exec(write)![1]!) as Record<string, unknown>;
    let announce!: (id: string) => void;
    const held = new Promise<string>((resolve) => (announce = resolve));
    const result = client.callTool(
      { name: 'fs__write_file', arguments: args },
      {
        onprogress: (p: { message?: string }) => {
          const id = /apr_[A-Za-z0-9_-]+/.exec(p.message ?? '')?.[0];
          if (id) announce(id);
        },
      },
    );
    result.catch(() => announce(''));
    const approve = info.tryNext
      .find((c) => c.includes('approvals approve'))!
      .replace('APPROVAL_ID', await held);
    const words = approve.match(/"[^"]*"|\S+/g)!.map((w) => w.replace(/^"|"$/g, ''));
    const ran = await runCli(words.slice(2));
    assert.equal(ran.code, 0, ran.stderr);
    assert.match(textOf(await result), /Successfully wrote/);
    assert.equal(readFileSync(String(args.path), 'utf8'), 'written through an approval');
  } finally {
    await client.close();
  }
}

/** The demo's two upstreams ran in sandboxes with no network, each writing only its own folder. */
async function bothUpstreamsSandboxed(
  dir: string,
  info: { mcpUrl: string; token: string; sandboxed?: boolean },
) {
  assert.equal(info.sandboxed, true, 'bubblewrap is installed here (.ci/run installs it)');
  const client = await httpClient(info.mcpUrl, 'legacy', { authorization: `Bearer ${info.token}` });
  try {
    assert.match(textOf(await client.callTool({ name: 'memory__read_graph', arguments: {} })), /entities/);
  } finally {
    await client.close();
  }
  const db = new DatabaseSync(join(dir, 'audit', 'audit.db'), { readOnly: true });
  const rows = db.prepare("SELECT leaf FROM audit_entries WHERE kind = 'upstream-start'").all();
  db.close();
  const starts = rows.map((r) => JSON.parse(Buffer.from((r as { leaf: Uint8Array }).leaf).toString('utf8')));
  const sandboxOf = (name: string) =>
    starts.find((r) => r.upstream === name && r.result === 'started')?.sandbox;
  assert.deepEqual(
    [sandboxOf('fs'), sandboxOf('memory')].map((s) => [s?.mechanism, s?.network, s?.writable]),
    [
      ['bubblewrap', 'none', [join(dir, 'sandbox')]],
      ['bubblewrap', 'none', [join(dir, 'memory')]],
    ],
  );
}

describe('portcullis demo', () => {
  it('answers 401 without a token and serves its printed token', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-demo-'));
    const child = spawn(NODE, [BIN, 'demo', '--port', '0', '--json', '--dir', dir], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      const line = await new Promise<string>((resolve) =>
        createInterface({ input: child.stdout! }).once('line', resolve),
      );
      const info = JSON.parse(line) as {
        mcpUrl: string;
        token: string;
        tryNext: string[];
        sandboxed?: boolean;
      };
      assert.equal((await post(info.mcpUrl, initializeBody())).status, 401);
      assert.equal(
        (await post(info.mcpUrl, initializeBody(), { authorization: `Bearer ${info.token}` })).status,
        200,
      );
      const inspector = info.tryNext.filter((c) => c.includes('inspector'));
      assert.equal(inspector.length, 3);
      assert.ok(inspector.every((c) => c.includes(`--header "Authorization: Bearer ${info.token}"`)));
      await writeThroughApproval(info);
      await bothUpstreamsSandboxed(dir, info);
      // Its token was issued as `token issue` issues one: recorded first.
      const jti = (
        JSON.parse(Buffer.from(info.token.split('.')[1]!, 'base64url').toString()) as { jti: string }
      ).jti;
      const db = new DatabaseSync(join(dir, 'audit', 'audit.db'), { readOnly: true });
      const issued = db
        .prepare("SELECT decision FROM audit_entries WHERE kind = 'admin' AND call_id = ?")
        .all(jti) as { decision: string }[];
      db.close();
      assert.deepEqual(
        issued.map((r) => r.decision),
        ['token-issued'],
      );
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
