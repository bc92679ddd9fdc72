import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { canonicalResource } from '../../src/credentials/backends.ts';
import { CredentialBroker } from '../../src/credentials/broker.ts';
import { MintedJwtBackend } from '../../src/credentials/minted-jwt.ts';
import { StaticBackend } from '../../src/credentials/static.ts';
import type { CredentialBackend, Issued } from '../../src/credentials/types.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { credentialsStage } from '../../src/pipeline/stages/credentials.ts';
import { openRecordStore } from '../../src/state/open.ts';
import { failsWith, testCallContext } from '../helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-cred-stage-'));
const store = openRecordStore({ store: 'sqlite', path: `state-${randomBytes(3).toString('hex')}.db` }, dir);
after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const jwks = createLocalJWKSet({
  keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'EdDSA' }],
});
const minted = (now = Date.now) =>
  new MintedJwtBackend({
    upstream: 'api',
    issuer: 'https://gw.example',
    actor: 'https://gw.example',
    audience: 'https://api.example',
    ttlSeconds: 30,
    header: 'authorization',
    keys: { signingKey: () => ({ kid: 'k1', key: privateKey }) },
    now,
  });

function brokerOver(backend: CredentialBackend): CredentialBroker {
  return new CredentialBroker({
    store,
    backends: new Map([['api', backend]]),
    journal: async () => 0,
    log: silentLogger,
    now: Date.now,
  });
}

const routed = (tool = 'read', args: Record<string, unknown> = { q: 1 }) =>
  testCallContext({
    route: {
      kind: 'upstream',
      upstream: 'api',
      method: 'tools/call',
      params: { name: tool, arguments: args },
      target: { exposed: `api__${tool}`, original: tool },
    },
  });

describe('the credentials stage', () => {
  it('puts the minted JWT on the context for forward and names its lease', async () => {
    const broker = brokerOver(minted());
    const ctx = routed();
    await credentialsStage(broker, () => true).run(ctx);
    const jwt = ctx.upstreamCredential?.headers.authorization?.slice('Bearer '.length) ?? '';
    const { payload } = await jwtVerify(jwt, jwks, {
      issuer: 'https://gw.example',
      audience: 'https://api.example',
    });
    assert.equal(payload.jti, ctx.leaseId);
    assert.equal(payload.scope, 'api:read');
    assert.equal(payload.sub, 'anonymous');
    await broker.close();
  });

  it('leases a minted JWT in the audit log before use and keeps no state-store record of it', async () => {
    const journal: Record<string, unknown>[] = [];
    const broker = new CredentialBroker({
      store,
      backends: new Map([['api', minted()]]),
      journal: async (record) => journal.push(record),
      log: silentLogger,
      now: Date.now,
    });
    const ctx = routed();
    await credentialsStage(broker, () => true).run(ctx);
    assert.deepEqual(
      journal.map((r) => [r.type, r.event, r.leaseId, r.scope]),
      [['lease', 'issued', ctx.leaseId, 'api:read']],
    );
    assert.equal(await store.get('lease', ctx.leaseId!), undefined);
    assert.equal(await broker.sweep(), 0);
    await broker.close();
  });

  it('gives nothing to an upstream without header credentials, and issues nothing for it', async () => {
    const broker = brokerOver(minted());
    const ctx = routed();
    await credentialsStage(broker, () => false).run(ctx);
    assert.equal(ctx.upstreamCredential, undefined);
    assert.equal(ctx.leaseId, undefined);
    await broker.close();
  });

  it('denies the call when the backend cannot sign (the key directory is gone)', async () => {
    const failing = new MintedJwtBackend({
      upstream: 'api',
      issuer: 'i',
      actor: 'i',
      audience: 'a',
      ttlSeconds: 30,
      header: 'authorization',
      keys: {
        signingKey: () => {
          throw new Error('EACCES');
        },
      },
      now: Date.now,
    });
    const broker = brokerOver(failing);
    const ctx = routed();
    await assert.rejects(
      Promise.resolve(credentialsStage(broker, () => true).run(ctx)),
      failsWith('ERR_CREDENTIAL_UNAVAILABLE'),
    );
    assert.equal(ctx.upstreamCredential, undefined);
    await broker.close();
  });

  it('does not pretend a header credential exists when the backend hands out variables', async () => {
    const envBackend: CredentialBackend = {
      kind: 'env-only',
      granularity: 'call',
      async issue(req, leaseId): Promise<Issued> {
        const now = Date.now();
        return {
          lease: {
            id: leaseId,
            backend: 'env-only',
            holder: req.principal,
            upstream: req.upstream,
            scope: 'x',
            sessionKey: req.sessionKey,
            issuedAt: now,
            expiresAt: now + 1000,
          },
          credential: { kind: 'env', env: { DATABASE_URL: 'postgres://x' } },
        };
      },
      async revoke() {},
    };
    const broker = brokerOver(envBackend);
    const ctx = routed();
    await assert.rejects(
      Promise.resolve(credentialsStage(broker, () => true).run(ctx)),
      failsWith('ERR_CREDENTIAL_UNAVAILABLE'),
    );
    assert.equal(ctx.upstreamCredential, undefined);
    await broker.close();
  });
});

describe('the minted-JWT backend', () => {
  it("names the issuer that vouched for the caller beside its subject (RFC 9493 iss_sub), so two issuers' alice differ", () => {
    const backend = minted();
    const jwtOf = (subjectIssuer?: string) => {
      const req = {
        principal: 'p',
        subject: 'alice',
        upstream: 'api',
        sessionKey: 's',
        callId: 'c',
        tool: 't',
      };
      const issued = backend.mint(subjectIssuer ? { ...req, subjectIssuer } : req, 'lse_1');
      const value = Object.values(issued.credential.kind === 'headers' ? issued.credential.headers : {})[0]!;
      return JSON.parse(Buffer.from(value.split('.')[1]!, 'base64url').toString('utf8'));
    };
    const a = jwtOf('https://idp-a.example');
    const b = jwtOf('https://idp-b.example');
    assert.equal(a.sub, b.sub);
    assert.deepEqual(a.sub_id, { format: 'iss_sub', iss: 'https://idp-a.example', sub: 'alice' });
    assert.notDeepEqual(a.sub_id, b.sub_id);
    assert.equal(jwtOf().sub_id, undefined, 'no issuer (no token): no sub_id');
  });

  it('refuses a lifetime over 60 s', () => {
    assert.throws(
      () =>
        new MintedJwtBackend({
          upstream: 'api',
          issuer: 'i',
          actor: 'i',
          audience: 'a',
          ttlSeconds: 61,
          header: 'authorization',
          keys: { signingKey: () => ({ kid: 'k1', key: privateKey }) },
          now: Date.now,
        }),
      RangeError,
    );
  });
});

describe("a minted JWT's default audience", () => {
  it("is the upstream's canonical URI: path and query kept, fragment, user info and trailing slash left out, host lower case", () => {
    assert.equal(canonicalResource('https://u:p@Search.Internal/mcp/#top'), 'https://search.internal/mcp');
    assert.equal(canonicalResource('https://h.internal/mcp?tenant=a'), 'https://h.internal/mcp?tenant=a');
    assert.notEqual(
      canonicalResource('https://h.internal/mcp?tenant=a'),
      canonicalResource('https://h.internal/mcp?tenant=b'),
    );
    assert.equal(canonicalResource('https://search.internal/'), 'https://search.internal');
    assert.equal(canonicalResource('http://127.0.0.1:8080/a/mcp'), 'http://127.0.0.1:8080/a/mcp');
    assert.notEqual(
      canonicalResource('https://h.internal/a/mcp'),
      canonicalResource('https://h.internal/b/mcp'),
    );
  });
});

describe('the static backend', () => {
  const name = `PORTCULLIS_STATIC_${process.pid}`;

  it('hands out the referenced header, and denies once the reference no longer resolves', async () => {
    const env: NodeJS.ProcessEnv = { [name]: 'k-123' };
    const backend = new StaticBackend({
      upstream: 'api',
      config: { kind: 'static', headers: { 'X-Api-Key': `env:${name}` }, env: {} },
      baseDir: dir,
      now: Date.now,
      env,
    });
    const req = { principal: 'p', subject: 'p', upstream: 'api', sessionKey: 's', callId: 'c' };
    const issued = await backend.issue(req, 'lse_1');
    assert.deepEqual(issued.credential, { kind: 'headers', headers: { 'x-api-key': 'k-123' } });
    delete env[name];
    await assert.rejects(backend.issue(req, 'lse_2'), failsWith('ERR_CREDENTIAL_UNAVAILABLE'));
  });

  it('stops the start when a reference does not resolve', () => {
    assert.throws(
      () =>
        new StaticBackend({
          upstream: 'api',
          config: { kind: 'static', headers: { 'X-Api-Key': `env:${name}_UNSET` }, env: {} },
          baseDir: dir,
          now: Date.now,
          env: {},
        }),
      failsWith('ERR_SECRET_UNRESOLVED'),
    );
  });
});
