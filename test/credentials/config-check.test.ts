import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CREDENTIAL_PLACEHOLDER } from '../../src/credentials/config.ts';
import { runCli } from '../helpers.ts';

describe('portcullis config check and static secrets', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-ambient-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('lists each static secret as ambient authority, naming upstream and reference, never the value', async () => {
    const file = join(dir, 'portcullis.yaml');
    writeFileSync(
      file,
      [
        'upstreams:',
        '  billing:',
        '    transport: http',
        '    url: http://127.0.0.1:9/mcp',
        '    credentials:',
        '      kind: static',
        '      headers:',
        '        X-Api-Key: env:BILLING_KEY',
        '  search:',
        '    transport: http',
        '    url: http://127.0.0.1:9/mcp',
        '    credentials:',
        '      kind: minted-jwt',
        '',
      ].join('\n'),
    );
    const r = await runCli(['config', 'check', file]);
    assert.equal(r.code, 0, r.stderr);
    const warnings = r.stdout.split('\n').filter((l) => l.startsWith('warning: ambient authority'));
    assert.deepEqual(warnings, [
      'warning: ambient authority: upstream billing credential header X-Api-Key = env:BILLING_KEY',
    ]);
  });

  it('warns that a credential in args is on the command line, where every local user can read it', async () => {
    const file = join(dir, 'argv.yaml');
    writeFileSync(
      file,
      JSON.stringify({
        upstreams: {
          db: {
            transport: 'stdio',
            command: 'node',
            args: ['server.js', CREDENTIAL_PLACEHOLDER],
            isolation: 'principal',
            credentials: {
              kind: 'postgres-role',
              adminUrl: 'env:PG_ADMIN_URL',
              grant: 'reader',
              env: 'DATABASE_URL',
            },
          },
        },
      }),
    );
    const r = await runCli(['config', 'check', file]);
    assert.equal(r.code, 0, r.stderr);
    const warning = r.stdout.split('\n').find((l) => l.includes('command line'));
    assert.match(
      warning ?? '',
      /^warning: upstreams\.db\.args\.1: \$\{credential\} puts the minted database password/,
    );
  });
});
