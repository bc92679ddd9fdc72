import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { type IncomingHttpHeaders, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { JSONRPC } from '../../src/errors.ts';
import { GatewayKeyDir } from '../../src/identity/gateway-keys.ts';
import { ATTESTATION_JWKS_PATH } from '../../src/identity/service.ts';
import type { RunningGateway } from '../../src/server.ts';
import { SqliteRevocationStore } from '../../src/state/sqlite.ts';
import {
  type Era,
  httpClient,
  initializeBody,
  post,
  probeUpstream,
  startAuthTestGateway,
  startTestGateway,
  TEST_RESOURCE,
  textOf,
} from '../helpers.ts';

const ALLOWED = ['probe__echo', 'probe__pid'];
const listBody = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' });

describe('an authenticated gateway (identity.mode: token)', () => {
  let dir: string;
  let gw: Awaited<ReturnType<typeof startAuthTestGateway>>;
  let token: string;
  let jti: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-identity-'));
    gw = await startAuthTestGateway({ upstreams: { probe: probeUpstream() } }, dir);
    ({ token, jti } = await gw.token('agent-1', ALLOWED));
  });
  after(async () => {
    await gw.running.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  it('answers a request without a token with 401 and a WWW-Authenticate pointing at its metadata', async () => {
    const res = await post(gw.url, initializeBody());
    assert.equal(res.status, 401);
    const challenge = res.headers.get('www-authenticate') ?? '';
    assert.match(challenge, /^Bearer /);
    assert.match(
      challenge,
      /resource_metadata="https:\/\/gateway\.test\/\.well-known\/oauth-protected-resource\/mcp"/,
    );
    assert.doesNotMatch(challenge, /error=/);
    assert.equal((res.json as { error: { message: string } }).error.message, 'Unauthorized');
  });

  it('answers a garbage token with 401 invalid_token and a generic message that does not echo the token', async () => {
    const res = await post(gw.url, initializeBody(), bearer('not-a-jwt.at-all.SECRETPART'));
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    assert.doesNotMatch(res.text, /SECRETPART/);
  });

  it('answers a malformed Authorization header with 400 invalid_request', async () => {
    const res = await post(gw.url, initializeBody(), { authorization: 'Bearer two tokens' });
    assert.equal(res.status, 400);
    assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_request"/);
  });

  it('answers two Authorization headers with 400, even when the first one is valid', async () => {
    const { hostname, port, pathname } = new URL(gw.url);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          hostname,
          port,
          path: pathname,
          method: 'POST',
          headers: [
            'content-type',
            'application/json',
            'accept',
            'application/json, text/event-stream',
            'authorization',
            `Bearer ${token}`,
            'authorization',
            'Bearer other',
          ],
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end(initializeBody());
    });
    assert.equal(status, 400);
  });

  it('serves protected resource metadata at the root and the path-inserted well-known URI', async () => {
    const base = new URL(gw.url).origin;
    for (const path of [
      '/.well-known/oauth-protected-resource',
      '/.well-known/oauth-protected-resource/mcp',
    ]) {
      const res = await fetch(base + path);
      assert.equal(res.status, 200);
      const doc = (await res.json()) as { resource: string; bearer_methods_supported: string[] };
      assert.equal(doc.resource, TEST_RESOURCE);
      assert.deepEqual(doc.bearer_methods_supported, ['header']);
    }
  });

  it('publishes its token-signing keys at /.well-known/jwks.json, and its result-signing key apart', async () => {
    const origin = new URL(gw.url).origin;
    const fetchKeys = async (path: string) =>
      (
        (await (await fetch(`${origin}${path}`)).json()) as {
          keys: { kid: string; kty: string; d?: string }[];
        }
      ).keys;
    const tokenKeys = await fetchKeys('/.well-known/jwks.json');
    const resultKeys = await fetchKeys(ATTESTATION_JWKS_PATH);
    assert.deepEqual([tokenKeys.length, resultKeys.length], [1, 1]);
    assert.notEqual(tokenKeys[0]!.kid, resultKeys[0]!.kid);
    for (const key of [...tokenKeys, ...resultKeys]) {
      assert.equal(key.kty, 'OKP');
      assert.equal(key.d, undefined);
    }
  });

  for (const era of ['legacy', 'modern'] as Era[]) {
    it(`lets a ${era} client with a gateway token list only its allowed tools and call them`, async () => {
      const client = await httpClient(gw.url, era, bearer(token));
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), ALLOWED);
      const result = await client.callTool({ name: 'probe__echo', arguments: { text: 'hi' } });
      assert.equal(textOf(result), 'hi');
      await assert.rejects(client.callTool({ name: 'probe__env', arguments: {} }), /Unknown tool/);
      await client.close();
    });
  }

  it('refuses a token minted for another audience', async () => {
    const keys = new GatewayKeyDir(join(dir, 'keys'));
    const { kid, key } = keys.signingKey();
    const now = Math.floor(Date.now() / 1000);
    const other = await new SignJWT({ allowed_tools: ALLOWED })
      .setProtectedHeader({ alg: 'EdDSA', kid })
      .setIssuer('https://gateway.test')
      .setSubject('agent-1')
      .setAudience('https://other.example/mcp')
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .setJti('x')
      .sign(key);
    const res = await post(gw.url, initializeBody(), bearer(other));
    assert.equal(res.status, 401);
  });

  it('refuses a certificate-bound token presented without mTLS', async () => {
    const { kid, key } = new GatewayKeyDir(join(dir, 'keys')).signingKey();
    const now = Math.floor(Date.now() / 1000);
    const bound = await new SignJWT({ allowed_tools: ALLOWED, cnf: { 'x5t#S256': 'A'.repeat(43) } })
      .setProtectedHeader({ alg: 'EdDSA', kid })
      .setIssuer('https://gateway.test')
      .setSubject('agent-1')
      .setAudience(TEST_RESOURCE)
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .setJti('bound')
      .sign(key);
    assert.equal((await post(gw.url, initializeBody(), bearer(bound))).status, 401);
  });

  it('refuses a legacy session presented with another principal token', async () => {
    const init = await post(gw.url, initializeBody(), bearer(token));
    const sessionId = init.headers.get('mcp-session-id')!;
    const { token: other } = await gw.token('agent-2', ALLOWED);
    const res = await post(gw.url, listBody, { ...bearer(other), 'mcp-session-id': sessionId });
    assert.equal(res.status, 403);
    assert.equal((res.json as { error: { code: number } }).error.code, JSONRPC.DENIED);
    const same = await post(gw.url, listBody, { ...bearer(token), 'mcp-session-id': sessionId });
    assert.equal(same.status, 200);
  });

  it('refuses a revoked token on the very next request', async () => {
    const { token: doomed, jti: doomedJti } = await gw.token('agent-3', ALLOWED);
    const ok = await post(gw.url, initializeBody(), bearer(doomed));
    assert.equal(ok.status, 200);
    const store = new SqliteRevocationStore(join(dir, 'state.db'));
    await store.revoke({ kind: 'jti', value: doomedJti, revokedAt: Date.now() });
    await store.close();
    const res = await post(gw.url, initializeBody(), bearer(doomed));
    assert.equal(res.status, 401);
    assert.notEqual(doomedJti, jti);
    assert.equal((await post(gw.url, initializeBody(), bearer(token))).status, 200);
  });
});

describe("the caller's credentials and an HTTP upstream", () => {
  let dir: string;
  let inner: RunningGateway;
  let outer: Awaited<ReturnType<typeof startAuthTestGateway>>;
  const seen: IncomingHttpHeaders[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-identity-'));
    inner = await startTestGateway({ upstreams: { probe: probeUpstream() } });
    inner.listener.server.on('request', (req) => seen.push(req.headers));
    outer = await startAuthTestGateway(
      { upstreams: { remote: { transport: 'http', url: inner.listener.url } } },
      dir,
    );
  });
  after(async () => {
    await outer.running.close();
    await inner.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("never forwards the caller's Authorization header upstream", async () => {
    const { token } = await outer.token('agent-1', ['remote__probe__echo']);
    const client = await httpClient(outer.url, 'modern', { authorization: `Bearer ${token}` });
    const result = await client.callTool({ name: 'remote__probe__echo', arguments: { text: 'x' } });
    assert.equal(textOf(result), 'x');
    await client.close();
    assert.ok(seen.length > 0);
    for (const h of seen) {
      assert.equal(h.authorization, undefined);
      assert.ok(!JSON.stringify(h).includes(token));
    }
  });
});
