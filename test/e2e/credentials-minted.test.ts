import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { canonicalize } from '../../src/audit/jcs.ts';
import { validateConfig } from '../../src/config/load.ts';
import { credentialBackends } from '../../src/credentials/backends.ts';
import { ConfigError } from '../../src/errors.ts';
import type { Gateway } from '../../src/gateway.ts';
import { type JwtUpstream, startJwtUpstream } from '../fixtures/jwt-upstream.ts';
import { httpClient, ROOT, startAuthTestGateway, TEST_RESOURCE, textOf } from '../helpers.ts';

const ISSUER = new URL(TEST_RESOURCE).origin;

async function auditRecords(gw: Gateway): Promise<Record<string, unknown>[]> {
  const { log } = await gw.audit.ready;
  const head = await log.store.head();
  return (await log.store.entries(0, head.size)).map((e) => JSON.parse(e.leaf.toString()));
}

describe('minted JWTs for an HTTP upstream, checked by the upstream itself', () => {
  let dir: string;
  let upstream: JwtUpstream;
  let gw: Awaited<ReturnType<typeof startAuthTestGateway>>;
  let jwksUrl: URL;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-minted-'));
    upstream = await startJwtUpstream({ server: 'api', issuer: ISSUER });
    gw = await startAuthTestGateway(
      { upstreams: { api: { transport: 'http', url: upstream.url, credentials: { kind: 'minted-jwt' } } } },
      dir,
    );
    jwksUrl = new URL('/.well-known/jwks.json', gw.url);
    upstream.jwksUrl = jwksUrl;
  });
  after(async () => {
    await gw.running.close();
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends a JWT the upstream verifies with the JWKS: audience, scope, lifetime, argument binding, actor', async () => {
    const { token } = await gw.token('agent-1', ['api__whoami']);
    const client = await httpClient(gw.url, 'modern', { authorization: `Bearer ${token}` });
    const args = { b: [1, 2.5, 'ü'], a: { z: null, y: true } };
    const claims = JSON.parse(textOf(await client.callTool({ name: 'api__whoami', arguments: args })));
    await client.close();

    const call = upstream.seen.findLast((h) => h['mcp-method'] === 'tools/call')!;
    const jwt = call.authorization!.slice('Bearer '.length);
    const { payload, protectedHeader } = await jwtVerify(jwt, createRemoteJWKSet(jwksUrl), {
      issuer: ISSUER,
      audience: upstream.url,
    });
    assert.equal(protectedHeader.alg, 'EdDSA');
    assert.equal(payload.sub, 'agent-1');
    assert.deepEqual(payload.sub_id, { format: 'iss_sub', iss: ISSUER, sub: 'agent-1' });
    assert.equal(payload.scope, 'api:whoami');
    assert.ok(payload.exp! - payload.iat! <= 60);
    assert.deepEqual(payload.act, { sub: ISSUER });
    assert.equal(payload.args_sha256, createHash('sha256').update(canonicalize(args)).digest('hex'));
    assert.deepEqual(claims, payload, 'the upstream accepted exactly this token');

    // The caller's own token never goes upstream, on any request.
    for (const h of upstream.seen) assert.ok(!JSON.stringify(h).includes(token));

    // The lease is the JWT's jti, named by the outcome record and issued in the log before the call went out.
    const records = await auditRecords(gw.running.gateway);
    const issued = records.find((r) => r.type === 'lease' && r.leaseId === payload.jti);
    const outcome = records.find((r) => r.type === 'outcome' && r.leaseId === payload.jti);
    assert.equal(issued?.event, 'issued');
    assert.equal(issued?.scope, 'api:whoami');
    assert.equal(outcome?.status, 'ok');
    assert.ok(records.indexOf(issued!) < records.indexOf(outcome!));
    assert.ok(!JSON.stringify(records).includes(jwt), 'the credential itself is never logged');
  });

  it('mints a new token for each call', async () => {
    const { token } = await gw.token('agent-2', ['api__whoami']);
    const client = await httpClient(gw.url, 'legacy', { authorization: `Bearer ${token}` });
    await client.callTool({ name: 'api__whoami', arguments: { n: 1 } });
    await client.callTool({ name: 'api__whoami', arguments: { n: 1 } });
    await client.close();
    const calls = upstream.seen.filter((h) => h['mcp-method'] === 'tools/call').slice(-2);
    const [a, b] = calls.map((h) => decodeJwt(h.authorization!.slice(7)));
    assert.notEqual(a!.jti, b!.jti);
  });

  it('has an expired token refused by the upstream itself', async () => {
    const { token } = await gw.token('agent-3', ['api__whoami']);
    const client = await httpClient(gw.url, 'modern', { authorization: `Bearer ${token}` });
    upstream.clockOffsetMs = 61_000;
    try {
      await assert.rejects(
        client.callTool({ name: 'api__whoami', arguments: {} }),
        /credential refused: "exp" claim timestamp check failed/,
      );
    } finally {
      upstream.clockOffsetMs = 0;
      await client.close();
    }
  });

  it('has the upstream refuse its token for any other arguments than those it is bound to', async () => {
    const { token } = await gw.token('agent-4', ['api__whoami']);
    const client = await httpClient(gw.url, 'modern', { authorization: `Bearer ${token}` });
    await client.callTool({ name: 'api__whoami', arguments: { amount: 1 } });
    await client.close();
    const { authorization } = upstream.seen.findLast((h) => h['mcp-method'] === 'tools/call')!;
    const replay = async (args: object) => {
      const res = await fetch(upstream.url, {
        method: 'POST',
        headers: { authorization: authorization!, 'content-type': 'application/json' },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'tools/call',
          params: { name: 'whoami', arguments: args },
        }),
      });
      return (await res.json()) as { result?: unknown; error?: { message: string } };
    };
    assert.ok((await replay({ amount: 1 })).result);
    assert.match((await replay({ amount: 1000 })).error?.message ?? '', /arguments differ/);
  });
});

describe('credentials a gateway cannot honour', () => {
  const build = (identity: object, upstream: object) => {
    const config = validateConfig({ identity, upstreams: { api: upstream } });
    const issuer = config.identity.mode === 'token' ? ISSUER : undefined;
    return credentialBackends(config, {
      baseDir: ROOT,
      now: Date.now,
      ...(issuer
        ? { gateway: { issuer, actor: issuer, keys: { signingKey: () => assert.fail('not signing') } } }
        : {}),
    });
  };
  const http = { transport: 'http', url: 'http://127.0.0.1:9/mcp' };
  const refused = (pattern: RegExp) => (err: unknown) =>
    err instanceof ConfigError && err.code === 'ERR_CONFIG_INVALID' && pattern.test(err.message);

  it('refuses to start a minted-JWT upstream on a gateway that publishes no JWKS', () => {
    assert.throws(
      () => build({ mode: 'none' }, { ...http, credentials: { kind: 'minted-jwt' } }),
      refused(/identity.mode token/),
    );
  });

  it('refuses to start a token-exchange upstream on an open gateway, whose callers have no token to exchange', () => {
    const credentials = {
      kind: 'token-exchange',
      tokenEndpoint: 'http://127.0.0.1:9/token',
      clientId: 'gw',
      clientSecret: 'env:NOPE',
      audience: 'api',
    };
    assert.throws(() => build({ mode: 'none' }, { ...http, credentials }), refused(/identity.mode: token/));
  });

  it('refuses a credential header the upstream also configures', () => {
    const upstream = { ...http, headers: { Authorization: 'env:X' }, credentials: { kind: 'minted-jwt' } };
    assert.throws(
      () => build({ mode: 'token', resource: TEST_RESOURCE }, upstream),
      refused(/both a configured header/),
    );
  });

  it('refuses to send a credential in clear text to an upstream off loopback', () => {
    const upstream = {
      transport: 'http',
      url: 'http://api.internal/mcp',
      credentials: { kind: 'minted-jwt' },
    };
    assert.throws(
      () => build({ mode: 'token', resource: TEST_RESOURCE }, upstream),
      refused(/https upstream/),
    );
  });

  it('gives upstreams without a credentials section nothing at all', () => {
    assert.equal(build({ mode: 'none' }, http).size, 0);
  });
});
