import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { credentialsSchema, type TokenExchangeConfig } from '../../src/credentials/config.ts';
import { createTokenExchangeBackend, TokenExchangeBackend } from '../../src/credentials/token-exchange.ts';
import type { CredentialRequest, Issued } from '../../src/credentials/types.ts';
import { PortcullisError } from '../../src/errors.ts';
import { identitySchema } from '../../src/identity/config.ts';
import { createFormPoster } from '../../src/identity/fetch.ts';
import {
  type ExchangeProvider,
  GATEWAY_AUDIENCE,
  GATEWAY_CLIENT,
  startExchangeProvider,
} from '../fixtures/token-exchange-provider.ts';

/** The identity tests' fetch guard: loopback allowed, nothing else relaxed. */
const FETCH = {
  allowLoopback: true,
  allowPrivate: false,
  timeoutMs: 5000,
  maxBytes: 64 * 1024,
  maxRedirects: 0,
};

function configFor(
  tokenEndpoint: string,
  audience: string,
  extra: Record<string, unknown> = {},
): TokenExchangeConfig {
  const parsed = credentialsSchema.parse({
    kind: 'token-exchange',
    tokenEndpoint,
    clientId: GATEWAY_CLIENT.id,
    clientSecret: 'env:PORTCULLIS_TEST_EXCHANGE_SECRET',
    audience,
    scope: 'files:read',
    ...extra,
  });
  assert.equal(parsed.kind, 'token-exchange');
  return parsed as TokenExchangeConfig;
}

function backendFor(
  cfg: TokenExchangeConfig,
  opts: { now?: () => number; secret?: string; fetch?: typeof FETCH } = {},
) {
  return new TokenExchangeBackend({
    config: cfg,
    clientSecret: opts.secret ?? GATEWAY_CLIENT.secret,
    post: createFormPoster(opts.fetch ?? FETCH),
    now: opts.now ?? Date.now,
  });
}

const request = (subjectToken: string | undefined, principal = 'issuer|agent-app'): CredentialRequest => ({
  principal,
  subject: 'agent-app',
  ...(subjectToken === undefined ? {} : { subjectToken }),
  upstream: 'files',
  tool: 'read_file',
  sessionKey: 'session-1',
  callId: 'call-1',
});

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** The error code and reason a refused issue ends with. */
async function refusal(p: Promise<unknown>): Promise<{ code: string; reason: unknown }> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof PortcullisError, String(err));
    return { code: err.code, reason: err.detail.reason };
  }
  assert.fail('expected a refusal');
}

const bearerOf = (issued: Issued): string => {
  assert.equal(issued.credential.kind, 'headers');
  const value = issued.credential.kind === 'headers' ? issued.credential.headers.authorization : undefined;
  assert.match(value ?? '', /^Bearer /);
  return (value ?? '').slice('Bearer '.length);
};

/** An HTTP upstream that accepts only a JWT of the provider, for itself, with `files:read`. */
async function startUpstream(provider: ExchangeProvider) {
  const jwks = createRemoteJWKSet(new URL(provider.jwksUri));
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
  server.on('request', async (req, res) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    try {
      const { payload } = await jwtVerify(token, jwks, {
        issuer: provider.issuer,
        audience: url,
        typ: 'at+jwt',
      });
      if (!String(payload.scope).split(' ').includes('files:read')) throw new Error('scope');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
    } catch {
      res.writeHead(401).end();
    }
  });
  return { url, close: () => closeServer(server) };
}

function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((r) => server.close(() => r()));
}

describe('token exchange (RFC 8693) against a real authorization server', () => {
  let provider: ExchangeProvider;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let callerToken: string;

  before(async () => {
    provider = await startExchangeProvider();
    upstream = await startUpstream(provider);
    callerToken = await provider.callerToken();
  });
  after(async () => {
    await upstream.close();
    await provider.stop();
  });

  it('gets a Bearer token for the upstream audience and the asked scope, on behalf of the caller, that the upstream accepts', async () => {
    const backend = backendFor(configFor(provider.tokenEndpoint, upstream.url));
    const issued = await backend.issue(request(callerToken), 'lease-1');
    const token = bearerOf(issued);
    const claims = decodeJwt(token);
    assert.equal(claims.aud, upstream.url);
    assert.equal(claims.scope, 'files:read');
    assert.equal(claims.sub, 'agent-app');
    assert.deepEqual(claims.act, { sub: GATEWAY_CLIENT.id });
    assert.notEqual(token, callerToken);

    const accepted = await fetch(upstream.url, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(accepted.status, 200);
    const passedThrough = await fetch(upstream.url, { headers: { authorization: `Bearer ${callerToken}` } });
    assert.equal(passedThrough.status, 401, "the caller's own token is not for the upstream");
  });

  it('records a lease that names the caller, upstream, scope and expiry, and never the token', async () => {
    const now = Date.now();
    const backend = backendFor(configFor(provider.tokenEndpoint, upstream.url), { now: () => now });
    const issued = await backend.issue(request(callerToken), 'lease-2');
    const { lease } = issued;
    assert.equal(backend.granularity, 'principal');
    assert.deepEqual(
      {
        id: lease.id,
        backend: lease.backend,
        holder: lease.holder,
        upstream: lease.upstream,
        scope: lease.scope,
      },
      {
        id: 'lease-2',
        backend: 'token-exchange',
        holder: 'issuer|agent-app',
        upstream: 'files',
        scope: 'files:read',
      },
    );
    assert.equal(lease.issuedAt, now);
    assert.ok(lease.expiresAt > now && lease.expiresAt <= now + 300_000, 'no longer than the token lives');
    assert.ok(!JSON.stringify(lease).includes(bearerOf(issued)));
    assert.ok(!JSON.stringify(lease).includes(callerToken));
  });

  it('serves the cached token until refreshSkewSeconds before it expires, then exchanges again', async () => {
    let now = Date.now();
    const backend = backendFor(configFor(provider.tokenEndpoint, upstream.url, { refreshSkewSeconds: 30 }), {
      now: () => now,
    });
    const before = provider.exchanges();
    const first = await backend.issue(request(callerToken), 'lease-a');
    const second = await backend.issue(request(callerToken), 'lease-b');
    assert.equal(provider.exchanges(), before + 1);
    assert.equal(bearerOf(second), bearerOf(first));

    now = first.lease.expiresAt - 30_000 - 1;
    const stillCached = await backend.issue(request(callerToken), 'lease-c');
    assert.equal(bearerOf(stillCached), bearerOf(first));
    assert.equal(provider.exchanges(), before + 1);

    now = first.lease.expiresAt - 30_000;
    const renewed = await backend.issue(request(callerToken), 'lease-d');
    assert.equal(provider.exchanges(), before + 2);
    assert.notEqual(bearerOf(renewed), bearerOf(first));
  });

  it('keeps one token per caller: another principal gets its own exchange', async () => {
    const backend = backendFor(configFor(provider.tokenEndpoint, upstream.url));
    const before = provider.exchanges();
    const mine = await backend.issue(request(callerToken, 'issuer|alice'), 'lease-x');
    const theirs = await backend.issue(request(callerToken, 'issuer|bob'), 'lease-y');
    assert.equal(provider.exchanges(), before + 2);
    assert.notEqual(bearerOf(mine), bearerOf(theirs));
  });

  it("exchanges again when the same caller comes with another subject token: a refreshed token is never served its predecessor's", async () => {
    const backend = backendFor(configFor(provider.tokenEndpoint, upstream.url));
    const before = provider.exchanges();
    const refreshed = await provider.callerToken();
    assert.notEqual(refreshed, callerToken);
    const old = await backend.issue(request(callerToken), 'lease-o');
    const fresh = await backend.issue(request(refreshed), 'lease-n');
    assert.equal(provider.exchanges(), before + 2);
    assert.notEqual(bearerOf(fresh), bearerOf(old));
    await backend.revoke(old.lease);
    assert.equal(
      bearerOf(await backend.issue(request(refreshed), 'lease-n2')),
      bearerOf(fresh),
      'revoking one keeps the other',
    );
  });

  it('asks the server once when one caller makes several calls at the same time', async () => {
    const backend = backendFor(configFor(provider.tokenEndpoint, upstream.url));
    const before = provider.exchanges();
    const issued = await Promise.all(
      [1, 2, 3].map((i) => backend.issue(request(callerToken), `lease-p${i}`)),
    );
    assert.equal(provider.exchanges(), before + 1);
    assert.equal(new Set(issued.map(bearerOf)).size, 1);
    assert.deepEqual(
      issued.map((i) => i.lease.id),
      ['lease-p1', 'lease-p2', 'lease-p3'],
    );
  });

  it('forgets the token on revoke, so the next call exchanges anew; revoking twice is harmless', async () => {
    const backend = backendFor(configFor(provider.tokenEndpoint, upstream.url));
    const before = provider.exchanges();
    const first = await backend.issue(request(callerToken), 'lease-r1');
    await backend.revoke(first.lease);
    await backend.revoke(first.lease);
    const next = await backend.issue(request(callerToken), 'lease-r2');
    assert.equal(provider.exchanges(), before + 2);
    assert.notEqual(bearerOf(next), bearerOf(first));
    await backend.revoke(first.lease);
    assert.equal(
      bearerOf(await backend.issue(request(callerToken), 'lease-r3')),
      bearerOf(next),
      'a stale lease leaves the newer token',
    );
  });

  it('refuses a token the server issued for another audience', async () => {
    const audience = 'https://mislabelled.test/mcp';
    provider.setRule(audience, { audience: 'https://someone-else.test/mcp' });
    const backend = backendFor(configFor(provider.tokenEndpoint, audience));
    assert.deepEqual(await refusal(backend.issue(request(callerToken), 'l')), {
      code: 'ERR_TOKEN_EXCHANGE_INVALID',
      reason: 'audience',
    });
  });

  it('refuses a token that lives longer than maxTtlSeconds', async () => {
    const audience = 'https://long-lived.test/mcp';
    provider.setRule(audience, { ttlSeconds: 3600 });
    const backend = backendFor(configFor(provider.tokenEndpoint, audience, { maxTtlSeconds: 300 }));
    assert.deepEqual(await refusal(backend.issue(request(callerToken), 'l')), {
      code: 'ERR_TOKEN_EXCHANGE_INVALID',
      reason: 'lifetime',
    });
  });

  it("is refused by the server for a subject token that is not the server's, and for a wrong client secret", async () => {
    const backend = backendFor(configFor(provider.tokenEndpoint, upstream.url));
    assert.deepEqual(await refusal(backend.issue(request('not-a-token'), 'l')), {
      code: 'ERR_TOKEN_EXCHANGE_DENIED',
      reason: 'oauth_error',
    });
    const wrongSecret = backendFor(configFor(provider.tokenEndpoint, upstream.url), {
      secret: 'not-the-secret',
    });
    assert.deepEqual(await refusal(wrongSecret.issue(request(callerToken), 'l')), {
      code: 'ERR_TOKEN_EXCHANGE_DENIED',
      reason: 'oauth_error',
    });
  });

  it('refuses a caller without a token to exchange, without asking the server', async () => {
    const backend = backendFor(configFor(provider.tokenEndpoint, upstream.url));
    const before = provider.exchanges();
    assert.deepEqual(await refusal(backend.issue(request(undefined), 'l')), {
      code: 'ERR_TOKEN_EXCHANGE_DENIED',
      reason: 'no_subject_token',
    });
    assert.equal(provider.exchanges(), before);
  });

  it('is wired from config with its secret by reference and the identity fetch guard, and refused for an open gateway', async () => {
    const cfg = configFor(provider.tokenEndpoint, upstream.url);
    const tokenIdentity = (allowLoopback: boolean) =>
      identitySchema.parse({ mode: 'token', resource: GATEWAY_AUDIENCE, fetch: { allowLoopback } });
    const wiring = {
      upstream: 'files',
      identity: tokenIdentity(true),
      baseDir: '/nonexistent',
      now: Date.now,
    };
    const env = { PORTCULLIS_TEST_EXCHANGE_SECRET: GATEWAY_CLIENT.secret };
    const wired = createTokenExchangeBackend(cfg, { ...wiring, env });
    assert.equal(decodeJwt(bearerOf(await wired.issue(request(callerToken), 'lease-w'))).aud, upstream.url);

    const guarded = createTokenExchangeBackend(cfg, {
      ...wiring,
      env,
      identity: tokenIdentity(false),
    });
    assert.deepEqual(await refusal(guarded.issue(request(callerToken), 'l')), {
      code: 'ERR_TOKEN_EXCHANGE_UNAVAILABLE',
      reason: 'blocked',
    });
    assert.throws(() => createTokenExchangeBackend(cfg, { ...wiring, env: {} }), {
      code: 'ERR_SECRET_UNRESOLVED',
    });
    assert.throws(
      () =>
        createTokenExchangeBackend(cfg, { ...wiring, env, identity: identitySchema.parse({ mode: 'none' }) }),
      {
        code: 'ERR_CONFIG_INVALID',
      },
    );
  });
});

describe('token exchange with an authorization server that is down, slow or answers wrongly', () => {
  let server: http.Server;
  let endpoint: string;
  let answer: { status: number; body: unknown; location?: string } | 'hang';
  const AUD = 'https://files.test/mcp';

  before(async () => {
    server = http.createServer((req, res) => {
      req.resume();
      if (answer === 'hang') return;
      const { status, body, location } = answer;
      res.writeHead(status, { 'content-type': 'application/json', ...(location ? { location } : {}) });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
  });
  beforeEach(() => {
    answer = { status: 500, body: {} };
  });
  after(() => closeServer(server));

  const ok = (fields: Record<string, unknown>) => ({
    status: 200,
    body: {
      access_token: 'opaque-token-value',
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      token_type: 'Bearer',
      expires_in: 120,
      ...fields,
    },
  });
  const jwtWith = (claims: Record<string, unknown>) =>
    `${Buffer.from('{"alg":"ES256"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2ln`;
  const issue = (extra: Record<string, unknown> = {}) =>
    refusal(backendFor(configFor(endpoint, AUD, extra)).issue(request('caller-token'), 'l'));

  it('refuses a server that is down', async () => {
    const gone = http.createServer();
    await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
    const port = (gone.address() as AddressInfo).port;
    await closeServer(gone);
    const backend = backendFor(configFor(`http://127.0.0.1:${port}/token`, AUD));
    assert.deepEqual(await refusal(backend.issue(request('caller-token'), 'l')), {
      code: 'ERR_TOKEN_EXCHANGE_UNAVAILABLE',
      reason: 'fetch_failed',
    });
  });

  it('refuses a server that does not answer within timeoutMs', async () => {
    answer = 'hang';
    assert.deepEqual(await issue({ timeoutMs: 200 }), {
      code: 'ERR_TOKEN_EXCHANGE_UNAVAILABLE',
      reason: 'timeout',
    });
  });

  it('refuses a server failing with a 5xx or answering with something that is not JSON', async () => {
    answer = { status: 503, body: { error: 'temporarily_unavailable' } };
    assert.deepEqual(await issue(), { code: 'ERR_TOKEN_EXCHANGE_UNAVAILABLE', reason: 'server_error' });
    answer = { status: 200, body: '<html>' };
    assert.deepEqual(await issue(), { code: 'ERR_TOKEN_EXCHANGE_UNAVAILABLE', reason: 'fetch_failed' });
  });

  it('refuses a redirect rather than sending the client credentials on', async () => {
    answer = { status: 307, body: {}, location: 'http://127.0.0.1:9/token' };
    assert.deepEqual(await issue(), { code: 'ERR_TOKEN_EXCHANGE_UNAVAILABLE', reason: 'blocked' });
  });

  it('refuses every answer defect with its own reason', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ token_type: 'DPoP' }, 'token_type'],
      [{ token_type: 'N_A' }, 'token_type'],
      [{ issued_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }, 'issued_token_type'],
      [{ issued_token_type: undefined }, 'issued_token_type'],
      [{ access_token: undefined }, 'malformed'],
      [{ access_token: 'two words' }, 'malformed'],
      [{ access_token: 'line\r\nX-Injected: 1' }, 'malformed'],
      [{ expires_in: 301 }, 'lifetime'],
      [{ expires_in: '60' }, 'malformed'],
      [{ expires_in: undefined }, 'lifetime'],
      [{ scope: 'files:read files:write' }, 'scope'],
      [{ access_token: jwtWith({ aud: [AUD, 'https://other.test'], exp: nowSeconds() + 60 }) }, 'audience'],
      [{ access_token: jwtWith({ exp: nowSeconds() + 60 }) }, 'audience'],
      [{ access_token: jwtWith({ aud: AUD, exp: nowSeconds() + 3600 }) }, 'lifetime'],
      [{ access_token: jwtWith({ aud: AUD, iat: 0, exp: nowSeconds() + 60 }) }, 'lifetime'],
      [{ access_token: jwtWith({ aud: AUD, exp: nowSeconds() - 1 }) }, 'expired'],
      [{ access_token: jwtWith({ aud: AUD, exp: nowSeconds() + 60, scope: 'admin' }) }, 'scope'],
      [{ access_token: 'eyJub3Q.anNvbg.c2ln' }, 'malformed'],
      [{ access_token: jwtWith({ aud: AUD, exp: 'soon' }) }, 'malformed'],
      [{ access_token: jwtWith({ aud: AUD, exp: nowSeconds() + 60, iat: 'then' }) }, 'malformed'],
    ];
    for (const [fields, reason] of cases) {
      answer = ok(fields);
      assert.deepEqual(await issue(), { code: 'ERR_TOKEN_EXCHANGE_INVALID', reason }, JSON.stringify(fields));
    }
  });

  it('takes a well-formed opaque answer, living as long as expires_in says', async () => {
    answer = ok({ scope: 'files:read' });
    const now = Date.now();
    const issued = await backendFor(configFor(endpoint, AUD), { now: () => now }).issue(
      request('caller-token'),
      'l',
    );
    assert.deepEqual(issued.credential, {
      kind: 'headers',
      headers: { authorization: 'Bearer opaque-token-value' },
    });
    assert.equal(issued.lease.expiresAt, now + 120_000);
  });
});
