import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/errors.ts';
import { createIdentity } from '../../src/identity/service.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { probeUpstream } from '../helpers.ts';

const base = { upstreams: { probe: probeUpstream() } };
const issues = (raw: unknown): string[] => {
  try {
    validateConfig(raw);
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.issues.map((i) => i.path);
  }
};

describe('the identity section of the config', () => {
  it('defaults to an open gateway, still refused anywhere but loopback', () => {
    assert.equal(validateConfig(base).identity.mode, 'none');
    assert.deepEqual(issues({ ...base, listen: { host: '0.0.0.0' } }), ['identity.mode']);
  });

  it('lets a token-checking gateway listen beyond loopback', () => {
    const cfg = validateConfig({
      ...base,
      listen: { host: '0.0.0.0' },
      identity: { mode: 'token', resource: 'https://gw.example.com/mcp' },
    });
    assert.equal(cfg.identity.mode, 'token');
  });

  it('never allows none or an HMAC algorithm for an issuer', () => {
    for (const alg of ['none', 'HS256']) {
      const path = issues({
        ...base,
        identity: {
          mode: 'token',
          resource: 'https://gw.example.com/mcp',
          issuers: [{ issuer: 'https://idp.example.com', algorithms: [alg] }],
        },
      });
      assert.deepEqual(path, ['identity.issuers.0.algorithms.0']);
    }
  });

  it('refuses plain http issuers and resources except on loopback, and unknown keys', () => {
    const token = (extra: Record<string, unknown>) => ({
      ...base,
      identity: { mode: 'token', resource: 'https://gw.example.com/mcp', ...extra },
    });
    assert.deepEqual(issues(token({ resource: 'http://gw.example.com/mcp' })), ['identity.resource']);
    assert.deepEqual(issues(token({ issuers: [{ issuer: 'http://idp.example.com' }] })), [
      'identity.issuers.0.issuer',
    ]);
    assert.deepEqual(issues(token({ issuers: [{ issuer: 'http://127.0.0.1:9000' }] })), []);
    assert.deepEqual(issues(token({ trustMe: true })), ['identity.trustMe']);
  });

  it('takes the state store from its own section: SQLite by default, PostgreSQL or Redis by reference', () => {
    assert.equal(validateConfig(base).state.store, 'sqlite');
    assert.equal(
      validateConfig({ ...base, state: { store: 'redis', url: 'env:REDIS_URL' } }).state.store,
      'redis',
    );
    assert.deepEqual(issues({ ...base, state: { store: 'postgres', url: 'env:PG', prefix: 'Bad-Name' } }), [
      'state.prefix',
    ]);
  });

  it('refuses an external issuer that claims the gateway token issuer', () => {
    const cfg = validateConfig({
      ...base,
      identity: {
        mode: 'token',
        resource: 'https://gw.example.com/mcp',
        issuers: [{ issuer: 'https://gw.example.com' }],
      },
    });
    assert.throws(() => createIdentity(cfg, '/tmp', { log: silentLogger }), ConfigError);
  });
});
