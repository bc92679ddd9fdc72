import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PortcullisError } from '../../src/errors.ts';
import { sandboxSchema } from '../../src/sandbox/config.ts';
import type { SandboxHost } from '../../src/sandbox/host.ts';
import { sandboxMode } from '../../src/sandbox/launch.ts';
import { EGRESS_SOCKET, sandboxedCommand } from '../../src/sandbox/plan.ts';
import { ROOT } from '../helpers.ts';

const host = { available: true, bwrap: '/b/bwrap', prlimit: '/b/prlimit', env: '/b/env' } as const;
const asRoot = { ...host, setpriv: '/b/setpriv' } as const;
const dir = mkdtempSync(join(ROOT, 'tmp-plan-'));
const home = join(dir, 'home');
const project = join(home, 'project');
const pkg = join(project, 'node_modules', 'server', 'index.js');
const keys = join(project, 'keys');
const data = join(dir, 'data');
for (const d of [join(project, 'node_modules', 'server'), keys, data]) mkdirSync(d, { recursive: true });
writeFileSync(pkg, '');
writeFileSync(join(project, 'portcullis.yaml'), '');
after(() => rmSync(dir, { recursive: true, force: true }));

const plan = (config: unknown, extra: Record<string, unknown> = {}) =>
  sandboxedCommand({
    host,
    config: sandboxSchema.parse(config),
    command: '/usr/bin/node',
    args: [pkg],
    cwd: project,
    path: '/usr/bin',
    hidden: [home, keys, join(project, 'portcullis.yaml')],
    ...extra,
  });

/** The `--flag A B` triples of a bwrap argument list, as `flag A B` strings. */
const mounts = (args: string[], flag: string): string[] =>
  args.flatMap((a, i) => (a === flag ? [`${args[i + 1]} ${args[i + 2] ?? ''}`.trim()] : []));

describe('the sandbox command line', () => {
  it('unshares every namespace, the network too unless the mode is host', () => {
    const none = plan({}).args;
    assert.ok(
      ['--unshare-user', '--unshare-pid', '--unshare-net', '--die-with-parent'].every((f) =>
        none.includes(f),
      ),
    );
    assert.ok(!plan({ network: 'host' }).args.includes('--unshare-net'));
  });

  it('mounts the root read-only with private /tmp and /run, and hides the gateway state', () => {
    const args = plan({}).args;
    assert.deepEqual(mounts(args, '--ro-bind')[0], '/ /');
    const tmpfs = args.flatMap((a, i) => (a === '--tmpfs' ? [args[i + 1]] : []));
    assert.ok(tmpfs.includes('/tmp') && tmpfs.includes('/run') && tmpfs.includes(home));
    assert.ok(args.join(' ').includes(`--ro-bind /dev/null ${join(project, 'portcullis.yaml')}`));
  });

  it('shows the server package again read-only, and hides the keys inside what it shows', () => {
    const args = plan({}).args;
    const line = args.join(' ');
    const shown = `--ro-bind ${join(project, 'node_modules')} ${join(project, 'node_modules')}`;
    assert.ok(line.indexOf(shown) > line.indexOf(`--tmpfs ${home}`));
    const writable = plan({ writable: [project] }).args.join(' ');
    assert.ok(writable.lastIndexOf(`--tmpfs ${keys}`) > writable.indexOf(`--bind ${project} ${project}`));
  });

  it('binds only the writable paths read-write, and refuses one that does not exist', () => {
    assert.deepEqual(mounts(plan({ writable: [data] }).args, '--bind'), [`${data} ${data}`]);
    assert.throws(
      () => plan({ writable: [join(dir, 'missing')] }),
      (e) => e instanceof PortcullisError && e.code === 'ERR_CONFIG_INVALID',
    );
  });

  it('applies the limits with prlimit inside the sandbox, where the user namespace counts its own processes', () => {
    const args = plan({ limits: { memoryMb: 128, processes: 20, openFiles: 64, cpuSeconds: 5 } }).args;
    const at = args.indexOf('/b/prlimit');
    assert.ok(at > args.indexOf('--'));
    assert.deepEqual(args.slice(at + 1, at + 6), [
      `--data=${128 * 1024 * 1024}`,
      '--nproc=20',
      '--nofile=64',
      '--cpu=5',
      '--core=0',
    ]);
    assert.deepEqual(args.slice(-2), ['/usr/bin/node', pkg]);
  });

  it('joins its memory cgroup before anything runs, and then sets no RLIMIT_DATA (V8 reserves more than it uses)', () => {
    const withCgroup = { ...asRoot, memory: { version: 1, parent: '/cg' }, sh: '/b/sh' } as const;
    const run = plan(
      { limits: { memoryMb: 128 } },
      { host: withCgroup, memoryCgroup: '/cg/p-1/cgroup.procs' },
    );
    assert.equal(run.command, '/b/sh');
    assert.deepEqual(run.args.slice(0, 4), [
      '-c',
      'echo $$ > "$0" && exec "$@"',
      '/cg/p-1/cgroup.procs',
      '/b/setpriv',
    ]);
    assert.ok(!run.args.some((a) => a.startsWith('--data=')));
    const without = plan(
      { limits: { memoryMb: 128 } },
      { host: asRoot, memoryCgroup: '/cg/p-1/cgroup.procs' },
    );
    assert.equal(without.command, '/b/setpriv', 'no shell to join it with: no cgroup');
    assert.ok(without.args.includes(`--data=${128 * 1024 * 1024}`), 'and the RLIMIT_DATA limit stays');
  });

  it('drops to the sandbox user before bwrap when the gateway runs as root', () => {
    const run = plan({}, { host: asRoot });
    assert.equal(run.command, '/b/setpriv');
    assert.deepEqual(run.args.slice(0, 5), [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      '--',
      '/b/bwrap',
    ]);
  });

  it('in allowlist mode binds the proxy socket in, runs the bridge first and points the proxy variables at it', () => {
    const run = plan(
      { network: { allow: ['api.example.com'] } },
      { egress: { socket: '/s/egress.sock', bridge: '/g/bridge.ts', node: '/usr/bin/node' } },
    );
    assert.ok(run.args.join(' ').includes(`--bind /s/egress.sock ${EGRESS_SOCKET}`));
    assert.ok(run.args.includes('--unshare-net'));
    assert.equal(run.env.HTTPS_PROXY, 'http://127.0.0.1:3128');
    assert.equal(run.env.NODE_USE_ENV_PROXY, '1');
    assert.equal(plan({}).env.HTTPS_PROXY, undefined);
  });
});

describe('the sandbox mode of an upstream', () => {
  const missing: SandboxHost = { available: false, reason: 'bubblewrap (bwrap) is not installed' };
  it('is refused when asked for and the machine has none, unsandboxed when left out, and off when off', () => {
    assert.equal(sandboxMode(sandboxSchema.parse({}), missing).kind, 'refused');
    assert.deepEqual(sandboxMode(undefined, missing), {
      kind: 'unsandboxed',
      why: 'unavailable',
      reason: missing.reason,
    });
    assert.deepEqual(sandboxMode('off', host), { kind: 'unsandboxed', why: 'off' });
    assert.equal(sandboxMode(undefined, host).kind, 'sandboxed');
  });
});
