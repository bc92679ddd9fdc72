import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { GatewayKeyDir } from '../../src/identity/gateway-keys.ts';
import { peerIdentity } from '../../src/identity/spiffe.ts';
import { SqliteRevocationStore } from '../../src/state/sqlite.ts';
import {
  eventually,
  httpClient,
  initializeBody,
  probeUpstream,
  startAuthTestGateway,
  startTestGateway,
  TEST_RESOURCE,
  textOf,
} from '../helpers.ts';
import { type Issued, makeCa, makeLeaf } from '../identity/pki.ts';

interface Reply {
  status: number;
  body: string;
}

/** One POST over its own TLS connection, presenting `client` (or no certificate). */
function postTls(
  url: string,
  serverCa: string,
  client: Issued | undefined,
  headers: Record<string, string> = {},
) {
  return new Promise<Reply>((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: 'POST',
        agent: false,
        ca: readFileSync(serverCa),
        ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}),
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...headers,
        },
      },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end(initializeBody());
  });
}

describe('an HTTPS listener that requires SPIFFE client certificates', () => {
  let dir: string;
  let ca: ReturnType<typeof makeCa>;
  let otherCa: ReturnType<typeof makeCa>;
  let agent: Issued;
  let bundle: string;
  let gw: Awaited<ReturnType<typeof startAuthTestGateway>>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-mtls-'));
    ca = makeCa(dir, 'prod');
    otherCa = makeCa(dir, 'other');
    const server = makeLeaf(ca, 'gateway', ['IP:127.0.0.1', 'URI:spiffe://prod.test/gateway']);
    agent = makeLeaf(ca, 'agent', ['URI:spiffe://prod.test/agent']);
    bundle = join(dir, 'bundle.pem');
    copyFileSync(ca.cert, bundle);
    gw = await startAuthTestGateway(
      {
        upstreams: { probe: probeUpstream() },
        identity: {
          mtls: {
            cert: server.cert,
            key: server.key,
            trustBundle: bundle,
            trustDomains: ['prod.test'],
            reloadIntervalMs: 50,
          },
        },
      },
      dir,
    );
  });
  after(async () => {
    await gw.running.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A gateway token for `probe__echo`, signed with the gateway's own key, with `extra` claims. */
  const gatewayToken = async (extra: Record<string, unknown>, sub: string, jti: string) => {
    const { kid, key } = new GatewayKeyDir(join(dir, 'keys')).signingKey();
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ allowed_tools: ['probe__echo'], ...extra })
      .setProtectedHeader({ alg: 'EdDSA', kid })
      .setIssuer(new URL(TEST_RESOURCE).origin)
      .setSubject(sub)
      .setAudience(TEST_RESOURCE)
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .setJti(jti)
      .sign(key);
  };

  it('serves https and takes the workload from the SVID', async () => {
    assert.match(gw.url, /^https:/);
    const res = await postTls(gw.url, ca.cert, agent);
    assert.equal(res.status, 200, res.body);
  });

  it('refuses a connection without a client certificate', async () => {
    await assert.rejects(postTls(gw.url, ca.cert, undefined));
  });

  it('refuses a certificate from a CA outside the trust bundle', async () => {
    const stranger = makeLeaf(otherCa, 'stranger', ['URI:spiffe://prod.test/agent']);
    await assert.rejects(postTls(gw.url, ca.cert, stranger));
  });

  it('refuses an expired SVID', async () => {
    const old = makeLeaf(ca, 'old', ['URI:spiffe://prod.test/agent'], {
      start: '20200101000000Z',
      end: '20200102000000Z',
    });
    await assert.rejects(postTls(gw.url, ca.cert, old));
  });

  it('answers 401 for two URI SANs, no SPIFFE ID, or a trust domain it does not accept', async () => {
    const two = makeLeaf(ca, 'two', ['URI:spiffe://prod.test/a', 'URI:spiffe://prod.test/b']);
    const none = makeLeaf(ca, 'none', ['DNS:agent.prod.test']);
    const foreign = makeLeaf(ca, 'foreign', ['URI:spiffe://staging.test/agent']);
    for (const leaf of [two, none, foreign]) assert.equal((await postTls(gw.url, ca.cert, leaf)).status, 401);
  });

  it('accepts a certificate-bound token only over that certificate (RFC 8705)', async () => {
    const other = makeLeaf(ca, 'agent2', ['URI:spiffe://prod.test/agent2']);
    const thumbprint = peerIdentity(new X509Certificate(readFileSync(agent.cert)));
    assert.ok(typeof thumbprint !== 'string');
    const bound = await gatewayToken({ cnf: { 'x5t#S256': thumbprint.thumbprint } }, 'alice', 'bound-1');
    const auth = { authorization: `Bearer ${bound}` };
    assert.equal((await postTls(gw.url, ca.cert, agent, auth)).status, 200);
    assert.equal((await postTls(gw.url, ca.cert, other, auth)).status, 401);
  });

  it("stops a token over mTLS when the token's own client id is revoked, not only the SPIFFE ID", async () => {
    const token = await gatewayToken({ client_id: 'agent-app' }, 'bob', 'client-revoked-1');
    const auth = { authorization: `Bearer ${token}` };
    assert.equal((await postTls(gw.url, ca.cert, agent, auth)).status, 200);
    const store = new SqliteRevocationStore(join(dir, 'state.db'));
    await store.revoke({ kind: 'workload', value: 'agent-app', revokedAt: Date.now() });
    await store.close();
    assert.equal((await postTls(gw.url, ca.cert, agent, auth)).status, 401);
  });

  it('picks up a new trust bundle without a restart (rotation during traffic)', async () => {
    const next = makeCa(dir, 'next');
    const rotated = makeLeaf(next, 'rotated', ['URI:spiffe://prod.test/agent']);
    await assert.rejects(postTls(gw.url, ca.cert, rotated));
    const both = `${readFileSync(ca.cert, 'utf8')}${readFileSync(next.cert, 'utf8')}`;
    writeFileSync(bundle, both);
    await eventually(async () => {
      const status = await postTls(gw.url, ca.cert, rotated).then(
        (r) => r.status,
        () => 0,
      );
      return status === 200;
    });
    assert.equal((await postTls(gw.url, ca.cert, agent)).status, 200);
  });
});

describe('an HTTP upstream reached over mTLS with a pinned SPIFFE ID', () => {
  let dir: string;
  let ca: ReturnType<typeof makeCa>;
  let client: Issued;
  let inner: Awaited<ReturnType<typeof startAuthTestGateway>>;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-mtls-up-'));
    ca = makeCa(dir, 'prod');
    const server = makeLeaf(ca, 'upstream', ['IP:127.0.0.1', 'URI:spiffe://prod.test/upstream']);
    client = makeLeaf(ca, 'gateway', ['URI:spiffe://prod.test/gateway']);
    inner = await startAuthTestGateway(
      {
        upstreams: { probe: probeUpstream() },
        identity: { mtls: { cert: server.cert, key: server.key, trustBundle: ca.cert } },
      },
      dir,
    );
  });
  after(async () => {
    await inner.running.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const outerWith = (spiffeId: string) =>
    startTestGateway({
      upstreams: {
        remote: {
          transport: 'http',
          url: inner.url,
          mtls: { cert: client.cert, key: client.key, trustBundle: ca.cert, spiffeId },
        },
      },
    });

  it('calls the upstream when it presents the pinned SPIFFE ID', async () => {
    const outer = await outerWith('spiffe://prod.test/upstream');
    try {
      const c = await httpClient(outer.listener.url, 'legacy');
      const result = await c.callTool({ name: 'remote__probe__echo', arguments: { text: 'over mtls' } });
      assert.equal(textOf(result), 'over mtls');
      await c.close();
    } finally {
      await outer.close();
    }
  });

  it('refuses an upstream whose SPIFFE ID is not the pinned one, before any call reaches it', async () => {
    const outer = await outerWith('spiffe://prod.test/someone-else');
    let reached = 0;
    const count = () => reached++;
    inner.running.listener.server.on('request', count);
    try {
      const c = await httpClient(outer.listener.url, 'legacy');
      await assert.rejects(c.callTool({ name: 'remote__probe__echo', arguments: { text: 'x' } }));
      await c.close();
      assert.equal(reached, 0);
    } finally {
      inner.running.listener.server.off('request', count);
      await outer.close();
    }
  });
});
