import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { decisionCommands, slackMessage } from '../../src/approval/webhook-payload.ts';
import { validateConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/errors.ts';
import { runCli } from '../helpers.ts';

const SHA = 'ab'.repeat(32);
const stdio = (pin: unknown) => ({
  upstreams: { notes: { transport: 'stdio', command: 'node', args: ['s.js'], pin } },
});

/** The config issues' paths, or [] when it validates. */
function issues(raw: unknown): string[] {
  try {
    validateConfig(raw);
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.issues.map((i) => i.path);
  }
}

describe('the pin of a stdio upstream in the config', () => {
  it('takes a sha256, a package by sha256 or integrity, or both', () => {
    assert.deepEqual(issues(stdio({ sha256: SHA })), []);
    assert.deepEqual(issues(stdio({ package: { name: '@scope/pkg', sha256: SHA } })), []);
    assert.deepEqual(
      issues(stdio({ sha256: SHA, package: { name: 'pkg', integrity: 'sha512-AbC+/9==' } })),
      [],
    );
  });

  it('refuses unknown keys, malformed hashes and a pin that names nothing to check', () => {
    assert.deepEqual(issues(stdio({ sha256: SHA, sha512: SHA })), ['upstreams.notes.pin.sha512']);
    assert.deepEqual(issues(stdio({ sha256: SHA.toUpperCase() })), ['upstreams.notes.pin.sha256']);
    assert.deepEqual(issues(stdio({ package: { name: 'pkg', integrity: 'md5-abc' } })), [
      'upstreams.notes.pin.package.integrity',
    ]);
    assert.deepEqual(issues(stdio({ package: { name: 'pkg' } })), ['upstreams.notes.pin.package']);
    assert.deepEqual(issues(stdio({})), ['upstreams.notes.pin']);
  });

  it('has no place on an HTTP upstream (pinned by its mTLS identity instead)', () => {
    const http = {
      upstreams: { crm: { transport: 'http', url: 'https://crm.example/mcp', pin: { sha256: SHA } } },
    };
    assert.deepEqual(issues(http), ['upstreams.crm.pin']);
  });
});

describe('config check and server pins', () => {
  it('warns of each stdio upstream the config does not pin, and of an npx spec without an exact version', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-serverpin-check-'));
    const file = join(dir, 'portcullis.json');
    writeFileSync(
      file,
      JSON.stringify({
        upstreams: {
          pinned: { transport: 'stdio', command: 'node', args: ['s.js'], pin: { sha256: SHA } },
          loose: { transport: 'stdio', command: 'npx', args: ['-y', '@modelcontextprotocol/server-memory'] },
          exact: { transport: 'stdio', command: 'npx', args: ['-y', 'pkg@1.2.3'], pin: { sha256: SHA } },
        },
      }),
    );
    const checked = await runCli(['config', 'check', file]);
    assert.equal(checked.code, 0, checked.stderr);
    assert.deepEqual(checked.stderr.trim().split('\n'), [
      'warning: upstreams.loose: no pin in the config; the state store pins it at first use (or: portcullis servers pin loose)',
      'warning: upstreams.loose: npx @modelcontextprotocol/server-memory names no exact version (pkg@1.2.3); npx may fetch another at start',
    ]);
  });

  it('tells the approver of a refused server which command accepts it', () => {
    const event = {
      type: 'server.refused' as const,
      time: 0,
      id: 'server/notes',
      summary: 'upstream notes refused to start: script sha256',
      data: {
        upstream: 'notes',
        reason: 'script sha256',
        approveCommand: 'portcullis servers approve notes --as NAME',
      },
    };
    assert.deepEqual(decisionCommands(event), ['portcullis servers approve notes --as NAME']);
    assert.match(JSON.stringify(slackMessage(event).blocks), /Upstream server refused to start/);
  });
});
