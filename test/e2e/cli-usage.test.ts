import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { COMMANDS } from '../../src/cli/main.ts';
import { USAGE } from '../../src/cli/usage.ts';
import { runCli } from '../helpers.ts';

/** Every command and subcommand of `portcullis`. */
const COMMAND_WORDS = [
  'serve',
  'wrap',
  'demo',
  'config',
  'config check',
  'config schema',
  'policy',
  'policy check',
  'policy test',
  'policy explain',
  'token',
  'token issue',
  'revoke',
  'audit',
  'audit verify',
  'audit checkpoint',
  'audit proof',
  'audit verify-proof',
  'audit consistency',
  'audit export',
  'audit tail',
  'audit replay',
  'audit policy',
  'approvals',
  'breakglass',
  'breakglass open',
  'breakglass approve',
  'breakglass close',
  'breakglass list',
  'tools',
  'tools list',
  'tools approve',
  'tools quarantine',
  'servers',
  'servers list',
  'servers show',
  'servers pin',
  'servers approve',
  'keys',
  'keys generate',
  'keys rotate',
  'attest',
  'attest verify',
  'attest rotate',
];

describe('--help', { concurrency: 2 }, () => {
  it('is listed for every command the CLI dispatches', () => {
    assert.deepEqual(
      [...new Set(COMMAND_WORDS.map((w) => w.split(' ')[0]))].sort(),
      Object.keys(COMMANDS).sort(),
    );
    assert.deepEqual([...COMMAND_WORDS].sort(), Object.keys(USAGE).sort());
  });

  for (const words of COMMAND_WORDS) {
    it(`prints the usage of "portcullis ${words}" and exits 0`, async () => {
      const r = await runCli([...words.split(' '), '--help']);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.startsWith(`Usage: portcullis ${words}`), r.stdout);
      assert.equal(r.stderr, '');
    });
  }

  it('answers -h like --help, and portcullis --help with the command list', async () => {
    const short = await runCli(['audit', 'tail', '-h']);
    assert.equal(short.code, 0);
    assert.ok(short.stdout.startsWith('Usage: portcullis audit tail'));
    const top = await runCli(['--help']);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /^Usage: portcullis <command>/);
  });
});

describe('malformed YAML', { concurrency: 2 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-bad-yaml-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'dup.yaml');
  writeFileSync(config, 'listen:\n  port: 8080\n  port: 8081\nupstreams: {}\n');
  const cases = join(dir, 'cases.yaml');
  writeFileSync(cases, 'cases:\n  - tool: fs__read\n    tool: fs__write\n');
  const noCases = join(dir, 'no-cases.yaml');
  writeFileSync(noCases, 'cases: []\n');
  const broken = join(dir, 'broken.yaml');
  writeFileSync(broken, 'listen: [8080,\nupstreams: {}\n');

  /** Every command that reads a config file, and the YAML test cases of `policy test`. */
  const READERS: readonly [args: string[], file: string, at: string][] = [
    [['serve', '--config', config], config, '3:3'],
    [['wrap', '--config', config], config, '3:3'],
    [['config', 'check', config], config, '3:3'],
    [['policy', 'check', '--config', config], config, '3:3'],
    [['policy', 'test', cases], cases, '3:5'],
    [['policy', 'test', noCases, '--config', config], config, '3:3'],
    [['policy', 'explain', '--config', config, '--tool', 'fs__read'], config, '3:3'],
    [['token', 'issue', '--config', config, '--sub', 'a', '--tools', 'x', '--reason', 'r'], config, '3:3'],
    [['revoke', '--config', config, '--jti', 'x'], config, '3:3'],
    [['keys', '--config', config], config, '3:3'],
    [['keys', 'rotate', '--config', config], config, '3:3'],
    [['audit', 'verify', '--config', config], config, '3:3'],
    [['audit', 'checkpoint', '--config', config], config, '3:3'],
    [['audit', 'proof', '--config', config, '--index', '0', '--out', dir], config, '3:3'],
    [['audit', 'consistency', '--config', config, '--old', config, '--out', dir], config, '3:3'],
    [['audit', 'export', '--config', config, '--tiles', dir], config, '3:3'],
    [['audit', 'tail', '--config', config], config, '3:3'],
    [['audit', 'replay', '--config', config, '--session', 's'], config, '3:3'],
  ];

  for (const [args, file, at] of READERS) {
    const label = `${args.slice(0, 2).join(' ')} (${file === config ? 'config' : 'test cases'})`;
    it(`portcullis ${label} says FILE:LINE:COL on one line and exits 2`, async () => {
      const r = await runCli(args);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr, `${file}:${at}: Map keys must be unique\n`);
    });
  }

  it('reports a broken --tools JSON file of policy test the same way', async () => {
    const tools = join(dir, 'tools.json');
    writeFileSync(tools, '[{"name": "fs__read",\n  "name": "fs__write"}]\n');
    const r = await runCli(['policy', 'test', noCases, '--tools', tools]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, `${tools}:2:3: Map keys must be unique\n`);
  });

  it('points at where a syntax error stops the parser, too', async () => {
    const r = await runCli(['config', 'check', broken]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`^${broken.replaceAll('.', '\\.')}:2:1: [^\\n]+\\n$`));
  });
});
