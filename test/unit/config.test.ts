import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfigText, validateConfig } from '../../src/config/load.ts';
import { configJsonSchema } from '../../src/config/schema.ts';
import { resolveValue } from '../../src/config/secrets.ts';
import { ConfigError, PortcullisError } from '../../src/errors.ts';

const minimal = { upstreams: { fs: { transport: 'stdio', command: 'node' } } };

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.code, 'ERR_CONFIG_INVALID');
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('config', () => {
  it('takes a protect section, and refuses masking for an upstream the config does not name', () => {
    assert.equal(validateConfig(minimal).protect.mask.mode, 'redact');
    const err = configError(() =>
      validateConfig({ ...minimal, protect: { mask: { upstreams: { fs: 'block', mail: 'redact' } } } }),
    );
    assert.deepEqual(
      err.issues.map((i) => i.path),
      ['protect.mask.upstreams.mail'],
    );
  });

  it('fills defaults: loopback listener on /mcp with a 4 MiB body limit', () => {
    const cfg = validateConfig(minimal);
    assert.equal(cfg.listen.host, '127.0.0.1');
    assert.equal(cfg.listen.path, '/mcp');
    assert.equal(cfg.listen.maxBodyBytes, 4 * 1024 * 1024);
  });

  it('isolates upstreams per caller and caps sessions and instances by default', () => {
    const cfg = validateConfig(minimal);
    assert.equal(cfg.upstreams.fs?.isolation, 'principal');
    assert.deepEqual(cfg.limits, {
      sessionsPerPrincipal: 16,
      instancesPerPrincipal: 8,
      instancesTotal: 64,
      instanceIdleMs: 300_000,
      retryAfterSeconds: 5,
    });
    assert.equal(cfg.listen.clientStreamWaitMs, 5_000);
    const err = configError(() =>
      validateConfig({ ...minimal, limits: { sessionsPerPrincipal: 0, maxSessions: 1 } }),
    );
    assert.deepEqual(err.issues.map((i) => i.path).sort(), [
      'limits.maxSessions',
      'limits.sessionsPerPrincipal',
    ]);
  });

  it('lets the admin listener off loopback only when callers are identified', () => {
    const off = { host: '0.0.0.0', allowedHosts: ['admin.internal'] };
    const err = configError(() => validateConfig({ ...minimal, admin: off }));
    assert.deepEqual(
      err.issues.map((i) => i.path),
      ['admin.host'],
    );
    assert.match(err.issues[0]!.message, /identity\.mode: token/);
    const identity = { mode: 'token', resource: 'https://gateway.example/mcp' };
    assert.equal(validateConfig({ ...minimal, identity, admin: off }).admin.host, '0.0.0.0');
    assert.equal(validateConfig({ ...minimal, admin: { ...off, enabled: false } }).admin.enabled, false);
  });

  it('rejects an unknown key and names its exact path', () => {
    const err = configError(() => validateConfig({ ...minimal, listen: { port: 1, prot: 2 } }));
    assert.deepEqual(
      err.issues.map((i) => i.path),
      ['listen.prot'],
    );
    const nested = configError(() =>
      validateConfig({ upstreams: { fs: { transport: 'stdio', command: 'node', evn: {} } } }),
    );
    assert.equal(nested.issues[0]?.path, 'upstreams.fs.evn');
  });

  it('refuses an open gateway on a non-loopback address', () => {
    const err = configError(() => validateConfig({ ...minimal, listen: { host: '0.0.0.0' } }));
    assert.equal(err.issues[0]?.path, 'identity.mode');
  });

  it('refuses inlined secrets in upstream headers', () => {
    const err = configError(() =>
      validateConfig({
        upstreams: {
          api: { transport: 'http', url: 'http://127.0.0.1:1/mcp', headers: { Authorization: 'Bearer x' } },
        },
      }),
    );
    assert.equal(err.issues[0]?.path, 'upstreams.api.headers.Authorization');
  });

  it('refuses two upstreams with the same prefix and an unprefixed upstream beside others', () => {
    const dup = configError(() =>
      validateConfig({
        upstreams: {
          a: { transport: 'stdio', command: 'x', prefix: 'b' },
          b: { transport: 'stdio', command: 'y' },
        },
      }),
    );
    assert.equal(dup.issues[0]?.path, 'upstreams.b.prefix');
    configError(() =>
      validateConfig({
        upstreams: {
          a: { transport: 'stdio', command: 'x', prefix: '' },
          b: { transport: 'stdio', command: 'y' },
        },
      }),
    );
  });

  it('reports YAML syntax errors and duplicate keys as config errors', () => {
    configError(() => parseConfigText('upstreams: [unclosed'));
    configError(() => parseConfigText('listen: {}\nlisten: {}\n'));
  });

  it('resolves env: and file: references and names a missing one without a value', () => {
    assert.equal(resolveValue('env:PC_TEST_VALUE', '/', { PC_TEST_VALUE: 'v' }), 'v');
    assert.equal(resolveValue('plain', '/', {}), 'plain');
    assert.throws(
      () => resolveValue('env:PC_MISSING', '/', {}),
      (e: unknown) => e instanceof PortcullisError && e.code === 'ERR_SECRET_UNRESOLVED',
    );
  });

  it('publishes a JSON Schema that closes every object to unknown keys', () => {
    const schema = configJsonSchema() as {
      additionalProperties?: boolean;
      properties: Record<string, unknown>;
    };
    assert.equal(schema.additionalProperties, false);
    assert.ok('upstreams' in schema.properties);
  });
});
