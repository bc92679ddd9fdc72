import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import type { Gateway } from '../../src/gateway.ts';
import { type JwtUpstream, startJwtUpstream } from '../fixtures/jwt-upstream.ts';
import {
  CALLER,
  type ExchangeProvider,
  GATEWAY_AUDIENCE,
  GATEWAY_CLIENT,
  startExchangeProvider,
} from '../fixtures/token-exchange-provider.ts';
import { startAuthTestGateway, textOf } from '../helpers.ts';

const SECRET_ENV = 'PORTCULLIS_TEST_TXE2E_SECRET';

/** A loopback hop in front of the provider's token endpoint: counts the requests, and can be taken down. */
async function startTokenProxy(tokenEndpoint: string) {
  let hits = 0;
  const server = http.createServer(async (req, res) => {
    hits++;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const answer = await fetch(tokenEndpoint, {
      method: 'POST',
      headers: {
        'content-type': String(req.headers['content-type']),
        authorization: String(req.headers.authorization),
      },
      body: Buffer.concat(chunks),
    });
    res.writeHead(answer.status, { 'content-type': 'application/json' }).end(await answer.text());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`,
    hits: () => hits,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
type TokenProxy = Awaited<ReturnType<typeof startTokenProxy>>;

/** An upstream that accepts only a token of the provider for itself (its URL), with `files:read`. */
async function startExchangeUpstream(server: string, provider: ExchangeProvider): Promise<JwtUpstream> {
  const jwks = createRemoteJWKSet(new URL(provider.jwksUri));
  const upstream: JwtUpstream = await startJwtUpstream({
    server,
    issuer: provider.issuer,
    async verifyToken(token) {
      const { payload } = await jwtVerify(token, jwks, {
        issuer: provider.issuer,
        audience: upstream.url,
        typ: 'at+jwt',
      });
      if (!String(payload.scope).split(' ').includes('files:read')) throw new Error('wrong scope');
      return payload;
    },
  });
  return upstream;
}

const exchangeCredentials = (tokenEndpoint: string, audience: string) => ({
  kind: 'token-exchange',
  tokenEndpoint,
  clientId: GATEWAY_CLIENT.id,
  clientSecret: `env:${SECRET_ENV}`,
  audience,
  scope: 'files:read',
});

async function auditRecords(gw: Gateway): Promise<Record<string, unknown>[]> {
  const { log } = await gw.audit.ready;
  const head = await log.store.head();
  return (await log.store.entries(0, head.size)).map((e) => JSON.parse(e.leaf.toString()));
}

/** The v1 SDK client over streamable HTTP, sending the caller's token on every request. */
async function v1Client(url: string, token: string): Promise<Client> {
  const client = new Client({ name: 'txe2e', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  return client;
}

const toolCalls = (upstream: JwtUpstream) => upstream.seen.filter((h) => h['mcp-method'] === 'tools/call');

describe('token exchange (RFC 8693) through the gateway, against a real authorization server', () => {
  let dir: string;
  let provider: ExchangeProvider;
  let files: JwtUpstream;
  let offline: JwtUpstream;
  let filesProxy: TokenProxy;
  let offlineProxy: TokenProxy;
  let gw: Awaited<ReturnType<typeof startAuthTestGateway>>;
  let callerToken: string;

  before(async () => {
    process.env[SECRET_ENV] = GATEWAY_CLIENT.secret;
    dir = mkdtempSync(join(tmpdir(), 'portcullis-txe2e-'));
    provider = await startExchangeProvider();
    files = await startExchangeUpstream('files', provider);
    offline = await startExchangeUpstream('offline', provider);
    filesProxy = await startTokenProxy(provider.tokenEndpoint);
    offlineProxy = await startTokenProxy(provider.tokenEndpoint);
    const upstream = (u: JwtUpstream, proxy: TokenProxy) => ({
      transport: 'http',
      url: u.url,
      credentials: exchangeCredentials(proxy.url, u.url),
    });
    gw = await startAuthTestGateway(
      {
        upstreams: { files: upstream(files, filesProxy), offline: upstream(offline, offlineProxy) },
        identity: {
          resource: GATEWAY_AUDIENCE,
          issuers: [{ issuer: provider.issuer, algorithms: ['ES256'], requiredScopes: ['mcp:tools'] }],
          fetch: { allowLoopback: true },
        },
      },
      dir,
    );
    callerToken = await provider.callerToken();
  });
  after(async () => {
    await gw.running.close();
    await Promise.all([files.close(), offline.close(), filesProxy.stop(), offlineProxy.stop()]);
    await provider.stop();
    rmSync(dir, { recursive: true, force: true });
    delete process.env[SECRET_ENV];
  });

  it('sends the upstream a token the server exchanged for it, naming the caller, and never the caller’s own', async () => {
    const client = await v1Client(gw.url, callerToken);
    const claims = JSON.parse(textOf(await client.callTool({ name: 'files__whoami', arguments: {} })));
    await client.close();

    const call = toolCalls(files).at(-1)!;
    const sent = call.authorization!.slice('Bearer '.length);
    const { payload } = await jwtVerify(sent, createRemoteJWKSet(new URL(provider.jwksUri)), {
      issuer: provider.issuer,
      audience: files.url,
    });
    assert.deepEqual(claims, payload, 'the upstream accepted exactly this token');
    assert.equal(payload.aud, files.url);
    assert.equal(payload.sub, decodeJwt(callerToken).sub);
    assert.equal(payload.sub, CALLER.id);
    assert.deepEqual(payload.act, { sub: GATEWAY_CLIENT.id });
    assert.equal(payload.scope, 'files:read');
    for (const h of [...files.seen, ...offline.seen]) assert.ok(!JSON.stringify(h).includes(callerToken));
    assert.equal(filesProxy.hits(), 1);
  });

  it('reuses the exchanged token for the caller’s next calls without asking the server again', async () => {
    const exchanged = provider.exchanges();
    const hits = filesProxy.hits();
    const client = await v1Client(gw.url, callerToken);
    await client.callTool({ name: 'files__whoami', arguments: { n: 1 } });
    await client.callTool({ name: 'files__whoami', arguments: { n: 2 } });
    await client.close();
    const [a, b, c] = toolCalls(files)
      .slice(-3)
      .map((h) => h.authorization);
    assert.equal(a, b);
    assert.equal(b, c);
    assert.equal(filesProxy.hits(), hits);
    assert.equal(provider.exchanges(), exchanged);
  });

  it('denies the call with ERR_TOKEN_EXCHANGE_UNAVAILABLE when the token endpoint is down, sending nothing upstream', async () => {
    await offlineProxy.stop();
    const client = await v1Client(gw.url, callerToken);
    const failure = await client.callTool({ name: 'offline__whoami', arguments: {} }).then(
      () => assert.fail('the call went through'),
      (err: unknown) => err,
    );
    await client.close();
    assert.ok(failure instanceof McpError, String(failure));
    assert.equal(failure.code, -32004);
    assert.match(failure.message, /Denied: no credential for this upstream is available/);
    assert.equal(failure.data, undefined, 'no detail reaches the caller');
    assert.equal(toolCalls(offline).length, 0);

    const records = await auditRecords(gw.running.gateway);
    const outcome = records.findLast((r) => r.type === 'outcome' && r.tool === 'offline__whoami');
    assert.equal(outcome?.error, 'ERR_TOKEN_EXCHANGE_UNAVAILABLE');
  });

  it('records the lease in the audit log before the call’s outcome, without the token itself', async () => {
    const records = await auditRecords(gw.running.gateway);
    const outcomes = records.filter((r) => r.type === 'outcome' && r.status === 'ok' && r.leaseId);
    assert.ok(outcomes.length >= 3);
    for (const outcome of outcomes) {
      const issued = records.find((r) => r.type === 'lease' && r.leaseId === outcome.leaseId);
      assert.equal(issued?.event, 'issued');
      assert.equal(issued?.backend, 'token-exchange');
      assert.equal(issued?.upstream, 'files');
      assert.equal(issued?.scope, 'files:read');
      assert.ok(records.indexOf(issued!) < records.indexOf(outcome));
    }
    const sent = toolCalls(files).map((h) => h.authorization!.slice('Bearer '.length));
    const log = JSON.stringify(records);
    for (const token of [callerToken, ...sent]) assert.ok(!log.includes(token), 'no token is logged');
  });
});
