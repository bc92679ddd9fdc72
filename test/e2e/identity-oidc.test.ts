import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import Provider from 'oidc-provider';
import {
  httpClient,
  initializeBody,
  post,
  probeUpstream,
  startAuthTestGateway,
  TEST_RESOURCE,
  textOf,
} from '../helpers.ts';

function signingKey(kid: string) {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { kid, privateKey, jwk: { ...privateKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' } };
}
type Key = ReturnType<typeof signingKey>;

/** A real OpenID provider on loopback, issuing audience-restricted JWT access tokens (RFC 8707). */
async function startProvider(port: number, keys: Key[]) {
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'agent-app',
        client_secret: 'agent-secret-which-is-long-enough',
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        id_token_signed_response_alg: 'ES256',
      },
      {
        client_id: 'ide',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
        redirect_uris: ['http://127.0.0.1/callback'],
        response_types: ['code'],
        id_token_signed_response_alg: 'ES256',
      },
    ],
    jwks: { keys: keys.map((k) => k.jwk) as never },
    scopes: ['mcp:tools'],
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => TEST_RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resource: string) => ({
          scope: 'mcp:tools',
          audience: resource,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 300,
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
  });
  const server = http.createServer(provider.callback());
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    issuer,
    port: (server.address() as AddressInfo).port,
    async token(resource = TEST_RESOURCE): Promise<{ status: number; token?: string }> {
      const res = await postForm(
        `${issuer}/token`,
        { grant_type: 'client_credentials', scope: 'mcp:tools', resource },
        `Basic ${Buffer.from('agent-app:agent-secret-which-is-long-enough').toString('base64')}`,
      );
      const json = JSON.parse(res.body) as { access_token?: string };
      return { status: res.status, ...(json.access_token ? { token: json.access_token } : {}) };
    },
    /** Authorization code with PKCE, the user "alice" logging in and consenting through the dev forms. */
    async codeFlowToken(): Promise<string | undefined> {
      const verifier = randomBytes(32).toString('base64url');
      const challenge = createHash('sha256').update(verifier).digest('base64url');
      const jar = new Map<string, string>();
      const go = async (url: string, init: RequestInit = {}) => {
        const res = await fetch(new URL(url, issuer), {
          ...init,
          redirect: 'manual',
          headers: {
            ...(init.headers as Record<string, string>),
            cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '),
          },
        });
        for (const c of res.headers.getSetCookie()) {
          const [pair] = c.split(';');
          const at = pair!.indexOf('=');
          jar.set(pair!.slice(0, at), pair!.slice(at + 1));
        }
        return { location: res.headers.get('location') ?? '', body: await res.text() };
      };
      const form = (body: Record<string, string>) => ({
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(body).toString(),
      });
      const auth = new URLSearchParams({
        client_id: 'ide',
        response_type: 'code',
        redirect_uri: 'http://127.0.0.1/callback',
        scope: 'openid mcp:tools',
        resource: TEST_RESOURCE,
        code_challenge: challenge,
        code_challenge_method: 'S256',
        state: 'st',
      });
      let { location } = await go(`/auth?${auth}`);
      for (let step = 0; step < 8 && !location.startsWith('http://127.0.0.1/callback'); step++) {
        if (!new URL(location, issuer).pathname.startsWith('/interaction/')) {
          ({ location } = await go(location));
          continue;
        }
        // The dev interaction page says which prompt it wants: login, then consent.
        const prompt = /name="prompt" value="(\w+)"/.exec((await go(location)).body)?.[1] ?? '';
        ({ location } = await go(
          location,
          form(prompt === 'login' ? { prompt, login: 'alice' } : { prompt }),
        ));
      }
      const code = new URL(location).searchParams.get('code');
      if (!code) return undefined;
      const res = await postForm(`${issuer}/token`, {
        grant_type: 'authorization_code',
        code,
        redirect_uri: 'http://127.0.0.1/callback',
        code_verifier: verifier,
        client_id: 'ide',
        resource: TEST_RESOURCE,
      });
      return (JSON.parse(res.body) as { access_token?: string }).access_token;
    },
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A form POST on a fresh connection (the provider restarts on the same port during the tests). */
function postForm(url: string, form: Record<string, string>, authorization?: string) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent: false,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          ...(authorization ? { authorization } : {}),
        },
      },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end(new URLSearchParams(form).toString());
  });
}

async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('a gateway trusting a real OpenID provider (oidc-provider on loopback)', () => {
  let dir: string;
  let port: number;
  let idp: Awaited<ReturnType<typeof startProvider>>;
  let gw: Awaited<ReturnType<typeof startAuthTestGateway>>;
  const k1 = signingKey('k1');
  const init = (token: string) => post(gw.url, initializeBody(), { authorization: `Bearer ${token}` });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-oidc-'));
    port = await freePort();
    idp = await startProvider(port, [k1]);
    gw = await startAuthTestGateway(
      {
        upstreams: { probe: probeUpstream() },
        identity: {
          issuers: [{ issuer: idp.issuer, algorithms: ['ES256'], requiredScopes: ['mcp:tools'] }],
          fetch: { allowLoopback: true },
          jwks: { maxAgeSeconds: 600, refetchCooldownSeconds: 0 },
        },
      },
      dir,
    );
  });
  after(async () => {
    await gw.running.close();
    await idp.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts a client-credentials token issued for its resource and names the OAuth client as workload', async () => {
    const { token } = await idp.token();
    assert.ok(token);
    const principal = await gw.running.gateway.identity.authenticate(`Bearer ${token}`);
    assert.equal(principal.workload, 'agent-app');
    assert.equal(principal.issuer, idp.issuer);
    assert.deepEqual(principal.scopes, ['mcp:tools']);
    const client = await httpClient(gw.url, 'modern', { authorization: `Bearer ${token}` });
    const result = await client.callTool({ name: 'probe__echo', arguments: { text: 'from oidc' } });
    assert.equal(textOf(result), 'from oidc');
    await client.close();
  });

  it('accepts an authorization-code-with-PKCE token for a user, audience-restricted to the gateway', async () => {
    const token = await idp.codeFlowToken();
    assert.ok(token, 'the code flow produced an access token');
    const principal = await gw.running.gateway.identity.authenticate(`Bearer ${token}`);
    assert.equal(principal.user, 'alice');
    assert.equal(principal.workload, 'ide');
    assert.equal((await init(token)).status, 200);
  });

  it('lists the provider in its protected resource metadata', async () => {
    const doc = (await (
      await fetch(new URL('/.well-known/oauth-protected-resource/mcp', gw.url))
    ).json()) as {
      authorization_servers: string[];
      scopes_supported: string[];
    };
    assert.deepEqual(doc.authorization_servers, [idp.issuer]);
    assert.deepEqual(doc.scopes_supported, ['mcp:tools']);
  });

  it('refuses a token the provider issued for another resource', async () => {
    const { token } = await idp.token('https://other.example/mcp');
    assert.ok(token);
    assert.equal((await init(token)).status, 401);
  });

  it('follows a key rotation at the provider, and keeps cached keys while the provider is down', async () => {
    const before = (await idp.token()).token!;
    await idp.stop();
    const k2 = signingKey('k2');
    idp = await startProvider(port, [k2, k1]);
    const rotated = (await idp.token()).token!;
    assert.equal(JSON.parse(Buffer.from(rotated.split('.')[0]!, 'base64url').toString()).kid, 'k2');
    assert.equal((await init(rotated)).status, 200);
    assert.equal((await init(before)).status, 200);
    await idp.stop();
    // Down: a new token signed by a known key still verifies from the cache...
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: idp.issuer,
      aud: TEST_RESOURCE,
      sub: 'agent-app',
      client_id: 'agent-app',
      scope: 'mcp:tools',
      iat: now,
      exp: now + 60,
    };
    const cached = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'k2' })
      .sign(k2.privateKey);
    assert.equal((await init(cached)).status, 200);
    // ...but a key the gateway has never seen fails closed.
    const k3 = signingKey('k3');
    const unknown = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'k3' })
      .sign(k3.privateKey);
    assert.equal((await init(unknown)).status, 401);
    idp = await startProvider(port, [k2]);
  });
});
