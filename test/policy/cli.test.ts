import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { NODE, ROOT } from '../helpers.ts';
import { FS_TOOLS } from './fixtures.ts';

const run = (...args: string[]) => {
  const r = spawnSync(NODE, [join(ROOT, 'bin/portcullis.js'), 'policy', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
};

function workspace(policy: string) {
  const dir = mkdtempSync(join(tmpdir(), 'pc-policy-cli-'));
  writeFileSync(join(dir, 'p.cedar'), policy);
  writeFileSync(join(dir, 'tools.json'), JSON.stringify(FS_TOOLS));
  const config = {
    upstreams: { fs: { transport: 'stdio', command: 'true' } },
    policy: { files: ['p.cedar'], trustAnnotations: ['fs'] },
  };
  writeFileSync(join(dir, 'portcullis.yaml'), stringify(config));
  return dir;
}

describe('portcullis policy', () => {
  it('test passes the shipped default set against its own cases', () => {
    const r = run('test', join(ROOT, 'policies/default.test.yaml'));
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /15 passed, 0 failed/);
  });

  it('test exits 1 and names the case whose decision does not match', () => {
    const dir = workspace('@id("p") permit(principal, action, resource);');
    writeFileSync(
      join(dir, 'cases.yaml'),
      stringify({
        config: 'portcullis.yaml',
        tools: 'tools.json',
        cases: [
          {
            name: 'reads are allowed',
            tool: 'fs__read_text_file',
            arguments: { path: '/a' },
            expect: 'allow',
          },
          {
            name: 'writes are denied',
            tool: 'fs__write_file',
            arguments: { path: '/a', content: 'x' },
            expect: 'deny',
          },
        ],
      }),
    );
    const r = run('test', join(dir, 'cases.yaml'));
    assert.equal(r.code, 1);
    assert.match(r.out, /ok {6}reads are allowed/);
    assert.match(r.out, /FAILED {2}writes are denied: expected deny, got allow/);
  });

  it('check refuses a policy that compares an argument with the wrong type, with the exact error', () => {
    const dir = workspace(
      '@id("bad") permit(principal, action == Action::"tools/call:fs__read_text_file", resource) when { context.input.head == "10" };',
    );
    const r = run('check', '--config', join(dir, 'portcullis.yaml'), '--tools', join(dir, 'tools.json'));
    assert.equal(r.code, 1);
    assert.match(r.out, /p\.cedar:1: the types Long and String are not compatible/);
  });

  it('check lists the tools with their tiers when the set is valid', () => {
    const dir = workspace(
      '@id("p") permit(principal, action in Action::"tools/call", resource) when { context.reason != "" };',
    );
    const r = run('check', '--config', join(dir, 'portcullis.yaml'), '--tools', join(dir, 'tools.json'));
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /fs__read_text_file {2}tier=read/);
    assert.match(r.out, /fs__write_file {2}tier=write/);
  });

  it('explain shows the decision, the policy set hash and the determining policy text', () => {
    const dir = workspace(
      '@id("reads") permit(principal, action in Action::"tools/call", resource) when { resource.tier == "read" };',
    );
    const r = run(
      'explain',
      '--config',
      join(dir, 'portcullis.yaml'),
      '--tools',
      join(dir, 'tools.json'),
      '--tool',
      'fs__read_text_file',
      '--args',
      '{"path":"/a"}',
    );
    assert.equal(r.code, 0, r.out);
    const report = JSON.parse(r.out);
    assert.equal(report.effect, 'allow');
    assert.deepEqual(report.determiningPolicies, ['reads']);
    assert.match(report.policySetHash, /^sha256:/);
    assert.match(report.policies[0].text, /resource\.tier == "read"/);
  });
});
