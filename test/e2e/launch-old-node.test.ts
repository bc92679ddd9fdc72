import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { PERMIT_ALL_POLICY, ROOT, textOf } from '../helpers.ts';

/** The machine's own node older than 26, as an MCP desktop client would find it on PATH. */
function oldNode(): string | undefined {
  for (const candidate of ['/usr/bin/node', '/usr/local/bin/node', '/bin/node']) {
    if (!existsSync(candidate)) continue;
    const version = execFileSync(candidate, ['--version'], { encoding: 'utf8' }).trim();
    const [major] = version.slice(1).split('.').map(Number) as [number];
    if (major < 26) return candidate;
  }
  return undefined;
}

const OLD_NODE = oldNode();

/** What a desktop client passes: the old node first on PATH, none of npm's or the test runner's variables. */
function clientEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !/^(npm_|NODE_)/i.test(k) && k !== 'PATH') env[k] = v;
  const rest = (process.env.PATH ?? '').split(delimiter).filter((p) => p && !p.includes('node_modules'));
  env.PATH = [dirname(OLD_NODE ?? '/usr/bin/node'), ...rest].join(delimiter);
  return env;
}

describe('launched by npx on a machine whose node is older than 26', {
  skip: OLD_NODE ? false : 'no node older than 26 on this machine',
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-old-node-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  function run(command: string, args: string[]) {
    const child = spawn(command, args, { cwd: dir, env: clientEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const done = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal })),
    );
    return { child, done, out: () => stdout, err: () => stderr };
  }

  it('answers --help from outside the repository, and passes exit codes through', async () => {
    const help = run('npx', ['--prefix', ROOT, 'portcullis', '--help']);
    assert.deepEqual(await help.done, { code: 0, signal: null }, help.err());
    assert.match(help.out(), /^Usage: portcullis <command>/);
    const unknown = run('npx', ['--prefix', ROOT, 'portcullis', 'no-such-command']);
    assert.equal((await unknown.done).code, 2);
  });

  it('hands a SIGTERM to the relaunched gateway, which shuts down cleanly', async () => {
    const config = join(dir, 'serve.yaml');
    writeFileSync(
      config,
      JSON.stringify({
        listen: { port: 0 },
        upstreams: {
          probe: { transport: 'stdio', command: 'node', args: [join(ROOT, 'test/fixtures/probe-server.ts')] },
        },
        policy: { files: [PERMIT_ALL_POLICY] },
        audit: { path: join(dir, 'serve-audit', 'audit.db') },
        admin: { enabled: false },
      }),
    );
    const serve = run(OLD_NODE!, [join(ROOT, 'bin/portcullis.js'), 'serve', '--config', config]);
    const listening = new Promise<void>((resolve) => {
      serve.child.stdout.on('data', () => {
        if (serve.out().includes('"event":"listening"')) resolve();
      });
    });
    const first = await Promise.race([listening.then(() => 'listening'), serve.done.then(() => 'exited')]);
    assert.equal(first, 'listening', serve.err());
    serve.child.kill('SIGTERM');
    assert.deepEqual(await serve.done, { code: 0, signal: null }, serve.err());
  });

  it('serves a whole wrap session: initialize, then tools/list and a call', async () => {
    const config = join(dir, 'portcullis.yaml');
    writeFileSync(
      config,
      JSON.stringify({
        upstreams: {
          // `node` from PATH: the upstream runs on the pinned node too, not the machine's.
          probe: { transport: 'stdio', command: 'node', args: [join(ROOT, 'test/fixtures/probe-server.ts')] },
        },
        policy: { files: [PERMIT_ALL_POLICY] },
        audit: { path: join(dir, 'audit', 'audit.db') },
        state: { store: 'sqlite', path: join(dir, 'state.db') },
      }),
    );
    const client = new Client({ name: 'desktop', version: '1.0.0' });
    await client.connect(
      new StdioClientTransport({
        command: 'npx',
        args: ['--prefix', ROOT, 'portcullis', 'wrap', '--config', config, '--server', 'probe'],
        cwd: dir,
        env: clientEnv(),
        stderr: 'ignore',
      }),
    );
    try {
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === 'probe__echo'));
      const echoed = await client.callTool({ name: 'probe__echo', arguments: { text: 'from node 20' } });
      assert.equal(textOf(echoed), 'from node 20');
    } finally {
      await client.close();
    }
  });
});
