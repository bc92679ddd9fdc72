import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config/load.ts';
import { CREDENTIAL_PLACEHOLDER } from '../../src/credentials/config.ts';
import { ConfigError } from '../../src/errors.ts';

const role = { kind: 'postgres-role', adminUrl: 'env:PG_ADMIN', grant: 'reader' };
const stdio = (extra: Record<string, unknown>) => ({
  upstreams: {
    db: { transport: 'stdio', command: 'node', args: ['server.js', CREDENTIAL_PLACEHOLDER], ...extra },
  },
});

/** The paths of the issues a config is refused with (ERR_CONFIG_INVALID). */
function refusedAt(raw: unknown): string[] {
  try {
    validateConfig(raw);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.code, 'ERR_CONFIG_INVALID');
    return err.issues.map((i) => i.path);
  }
  return assert.fail('the config was taken');
}

describe('where a postgres-role credential may go', () => {
  it('takes a stdio upstream isolated per principal, with the placeholder in its args, and defaults to DATABASE_URL', () => {
    const cfg = validateConfig(stdio({ credentials: role }));
    const db = cfg.upstreams.db!;
    assert.equal(db.isolation, 'principal');
    assert.equal(db.credentials?.kind === 'postgres-role' && db.credentials.env, 'DATABASE_URL');
    assert.ok(validateConfig(stdio({ isolation: 'session', credentials: { ...role, per: 'session' } })));
  });

  it('refuses isolation shared, which would hand one caller’s role to every caller', () => {
    assert.deepEqual(refusedAt(stdio({ isolation: 'shared', credentials: role })), [
      'upstreams.db.isolation',
    ]);
  });

  it('refuses a per that differs from the isolation, since each instance gets the role minted for it', () => {
    assert.deepEqual(refusedAt(stdio({ isolation: 'session', credentials: role })), [
      'upstreams.db.credentials.per',
    ]);
  });

  it('refuses it on an HTTP upstream, which is started for no one', () => {
    const raw = {
      upstreams: { db: { transport: 'http', url: 'http://127.0.0.1:1/mcp', credentials: role } },
    };
    assert.deepEqual(refusedAt(raw), ['upstreams.db.credentials.kind']);
  });

  it('refuses a configured variable of the same name as the credential’s', () => {
    assert.deepEqual(refusedAt(stdio({ env: { DATABASE_URL: 'postgres://x@y/z' }, credentials: role })), [
      'upstreams.db.env.DATABASE_URL',
    ]);
  });

  it('refuses the credential placeholder in args when no credential fills it', () => {
    assert.deepEqual(refusedAt(stdio({})), ['upstreams.db.args.1']);
  });

  it('refuses unknown keys and a grant that is not a plain role name', () => {
    assert.deepEqual(refusedAt(stdio({ credentials: { ...role, grant: 'reader; DROP ROLE x' } })), [
      'upstreams.db.credentials.grant',
    ]);
    assert.deepEqual(refusedAt(stdio({ credentials: { ...role, password: 'x' } })), [
      'upstreams.db.credentials.password',
    ]);
  });
});
