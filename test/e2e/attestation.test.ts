import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { createRemoteJWKSet, FlattenedSign, flattenedVerify, jwtVerify, SignJWT } from 'jose';
import { REQUEST_TYP } from '../../src/attest/detached.ts';
import { AttestationKeys, SIGNER_REFRESH_MS } from '../../src/attest/keys.ts';
import { requestPayload, SIGNATURE_META_KEY } from '../../src/attest/request-signature.ts';
import { ATTESTATION_META_KEY, attestResult, resultHashOf, resultPayload } from '../../src/attest/result.ts';
import { loadConfigFile } from '../../src/config/load.ts';
import { JSONRPC } from '../../src/errors.ts';
import { GatewayKeyDir } from '../../src/identity/gateway-keys.ts';
import { ATTESTATION_JWKS_PATH } from '../../src/identity/service.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { startGateway } from '../../src/server.ts';
import {
  httpClient,
  PERMIT_ALL_POLICY,
  probeUpstream,
  runCli,
  startAuthTestGateway,
  startTestGateway,
  TEST_RESOURCE,
  textOf,
} from '../helpers.ts';

/** Everything goes, but `echo` only when the caller signed the request. */
const POLICY = `
@id("permit-all")
permit(principal, action, resource);

@id("echo-needs-a-signed-request")
forbid(principal, action == Action::"tools/call:probe__echo", resource)
unless { context.request.signed };
`;

const TOOLS = ['probe__echo', 'probe__pid', 'probe__meta_keys'];

interface Setup {
  dir: string;
  url: string;
  configPath: string;
  callerKey: KeyObject;
  client: V1Client;
  close(): Promise<void>;
}

/** A gateway token bound to `jwk` (RFC 7800 `cnf`), signed with the gateway's own token key. */
async function boundToken(dir: string, sub: string, jwk: Record<string, unknown>): Promise<string> {
  const { kid, key } = new GatewayKeyDir(join(dir, 'keys')).signingKey();
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    allowed_tools: TOOLS,
    allowed_prompts: [],
    allowed_resources: [],
    reason: 'test',
    cnf: { jwk },
  })
    .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt' })
    .setIssuer(new URL(TEST_RESOURCE).origin)
    .setSubject(sub)
    .setAudience(TEST_RESOURCE)
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .setJti(randomUUID())
    .sign(key);
}

async function setUp(): Promise<Setup> {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'pc-attest-')));
  writeFileSync(join(dir, 'policy.cedar'), POLICY);
  const config = {
    upstreams: { probe: probeUpstream() },
    policy: { files: [join(dir, 'policy.cedar')] },
    audit: { path: join(dir, 'audit.db') },
    attest: { keyDir: join(dir, 'attest-keys') },
  };
  const gw = await startAuthTestGateway(config, dir);
  const configPath = join(dir, 'portcullis.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      ...config,
      identity: { mode: 'token', resource: TEST_RESOURCE, gatewayTokens: { keyDir: join(dir, 'keys') } },
      state: { store: 'sqlite', path: join(dir, 'state.db') },
    }),
  );
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const token = await boundToken(dir, 'dana', { ...publicKey.export({ format: 'jwk' }) });
  const client = new V1Client({ name: 'attest-test', version: '1.0.0' });
  await client.connect(
    new V1Transport(new URL(gw.url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
  );
  return {
    dir,
    url: gw.url,
    configPath,
    callerKey: privateKey,
    client,
    async close() {
      await client.close();
      await gw.running.close();
    },
  };
}

/** What a caller adds to `_meta` to sign a `tools/call`, with jose (RFC 7797 detached, unencoded payload). */
async function signature(
  key: KeyObject,
  params: Record<string, unknown>,
  nonce = randomBytes(16).toString('base64url'),
) {
  const time = Date.now();
  const jws = await new FlattenedSign(requestPayload('tools/call', params, nonce, time))
    .setProtectedHeader({ alg: 'EdDSA', typ: REQUEST_TYP, b64: false, crit: ['b64'] })
    .sign(key);
  return { jws: `${jws.protected}..${jws.signature}`, nonce, time };
}

/** The newest outcome record in the audit log. */
function lastOutcome(dir: string): Record<string, unknown> {
  const db = new DatabaseSync(join(dir, 'audit.db'), { readOnly: true });
  try {
    const row = db
      .prepare("SELECT leaf FROM audit_entries WHERE kind = 'outcome' ORDER BY idx DESC LIMIT 1")
      .get() as { leaf: Uint8Array };
    return JSON.parse(Buffer.from(row.leaf).toString('utf8'));
  } finally {
    db.close();
  }
}

function decisionAt(dir: string, index: number): Record<string, unknown> {
  const db = new DatabaseSync(join(dir, 'audit.db'), { readOnly: true });
  try {
    const row = db.prepare('SELECT leaf FROM audit_entries WHERE idx = ?').get(index) as { leaf: Uint8Array };
    return JSON.parse(Buffer.from(row.leaf).toString('utf8'));
  } finally {
    db.close();
  }
}

const save = (dir: string, doc: unknown): string => {
  const file = join(dir, `saved-${randomUUID()}.json`);
  writeFileSync(file, JSON.stringify(doc, null, 2));
  return file;
};

const deniedWith = (message: RegExp) => (err: unknown) => {
  assert.ok(err instanceof McpError, String(err));
  assert.equal(err.code, JSONRPC.DENIED);
  assert.match(err.message, message);
  return true;
};

describe('signed results through the gateway (v1 SDK client)', () => {
  let s: Setup;
  before(async () => {
    s = await setUp();
  });
  after(async () => s?.close());

  it('carries an attestation that jose verifies against the gateway JWKS, in a few lines', async () => {
    const result = await s.client.callTool({ name: 'probe__pid', arguments: {} });
    const att = (result._meta as Record<string, Record<string, unknown>>)[ATTESTATION_META_KEY]!;
    const [protectedHeader, , sig] = String(att.jws).split('.');
    const jwks = createRemoteJWKSet(new URL(ATTESTATION_JWKS_PATH, s.url));
    const claims = { callId: att.callId as string, index: att.index as number, time: att.time as number };
    await flattenedVerify(
      { protected: protectedHeader!, signature: sig!, payload: resultPayload(resultHashOf(result), claims) },
      jwks,
    );
    // The outcome record keeps what was signed; the decision record at the index names the call.
    assert.deepEqual(lastOutcome(s.dir).attestation, { kid: att.kid, resultHash: resultHashOf(result) });
    assert.equal(decisionAt(s.dir, claims.index).callId, claims.callId);
  });

  it('keeps its result-signing keys out of /.well-known/jwks.json: a token signed with one verifies against nothing there', async () => {
    const tokenKeys = (await (await fetch(new URL('/.well-known/jwks.json', s.url))).json()) as {
      keys: { kid: string }[];
    };
    const { kid: resultKid, key: resultKey } = new GatewayKeyDir(join(s.dir, 'attest-keys')).signingKey();
    assert.ok(tokenKeys.keys.length > 0);
    assert.ok(tokenKeys.keys.every((k) => k.kid !== resultKid));
    // What a leaked result key would sign: a credential in the gateway's name, for an upstream that checks the JWKS.
    const forged = await new SignJWT({ sub: 'mallory' })
      .setProtectedHeader({ alg: 'EdDSA', kid: resultKid, typ: 'JWT' })
      .setIssuer(new URL(s.url).origin)
      .setAudience('https://search.internal')
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(resultKey);
    await assert.rejects(
      jwtVerify(forged, createRemoteJWKSet(new URL('/.well-known/jwks.json', s.url)), {
        algorithms: ['EdDSA'],
      }),
      { code: 'ERR_JWKS_NO_MATCHING_KEY' },
    );
  });

  it('verifies with `portcullis attest verify`, by the config (with the audit log) and by the JWKS URL', async () => {
    const result = await s.client.callTool({ name: 'probe__pid', arguments: {} });
    const file = save(s.dir, { jsonrpc: '2.0', id: 7, result });
    const byConfig = await runCli(['attest', 'verify', file, '--config', s.configPath]);
    assert.equal(byConfig.code, 0, byConfig.stderr);
    const out = JSON.parse(byConfig.stdout);
    assert.equal(out.ok, true);
    assert.equal(out.logged.decisionIndex, out.index);
    assert.ok(out.logged.outcomeIndex > out.index);
    const byUrl = await runCli([
      'attest',
      'verify',
      file,
      '--jwks',
      new URL(ATTESTATION_JWKS_PATH, s.url).href,
    ]);
    assert.equal(byUrl.code, 0, byUrl.stderr);
  });

  it("fetches a key set over plain http only from a loopback host (keys in the clear could be anyone's)", async () => {
    const result = await s.client.callTool({ name: 'probe__pid', arguments: {} });
    const file = save(s.dir, { jsonrpc: '2.0', id: 7, result });
    const remote = await runCli([
      'attest',
      'verify',
      file,
      '--jwks',
      'http://gateway.example/.well-known/jwks.json',
    ]);
    assert.equal(remote.code, 2);
    assert.match(remote.stderr, /plain http only to a loopback host; use https/);
  });

  it('refuses a saved copy with one byte changed', async () => {
    const result = await s.client.callTool({ name: 'probe__pid', arguments: {} });
    const pid = textOf(result);
    const tampered = JSON.stringify({ jsonrpc: '2.0', id: 7, result }).replace(
      `"text":"${pid}"`,
      `"text":"${pid.slice(0, -1)}${(Number(pid.at(-1)) + 1) % 10}"`,
    );
    assert.notEqual(tampered, JSON.stringify({ jsonrpc: '2.0', id: 7, result }));
    const r = await runCli(['attest', 'verify', save(s.dir, JSON.parse(tampered)), '--config', s.configPath]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ERR_ATTESTATION_INVALID/);
  });

  it('refuses a well-signed result the audit log does not hold', async () => {
    const keys = new AttestationKeys(join(s.dir, 'attest-keys'));
    const forged = attestResult(
      keys.signer(),
      { content: [{ type: 'text', text: 'never answered' }] },
      {
        callId: randomUUID(),
        index: 0,
        time: Date.now(),
      },
    );
    const file = save(s.dir, forged.result);
    const jwksOnly = await runCli([
      'attest',
      'verify',
      file,
      '--jwks',
      new URL(ATTESTATION_JWKS_PATH, s.url).href,
    ]);
    assert.equal(jwksOnly.code, 0, 'the signature itself holds');
    const withLog = await runCli(['attest', 'verify', file, '--config', s.configPath]);
    assert.equal(withLog.code, 1);
    assert.match(withLog.stderr, /ERR_ATTESTATION_NOT_LOGGED/);
  });

  it('signs the gateway lists too', async () => {
    const list = await s.client.listTools();
    assert.ok((list._meta as Record<string, unknown>)[ATTESTATION_META_KEY]);
  });
});

describe('caller-signed requests through the gateway', () => {
  let s: Setup;
  before(async () => {
    s = await setUp();
  });
  after(async () => s?.close());

  it('lets a request signed with the token-bound key through a policy that requires it', async () => {
    const params = { name: 'probe__echo', arguments: { text: 'signed hello' } };
    const result = await s.client.callTool({
      ...params,
      _meta: { [SIGNATURE_META_KEY]: await signature(s.callerKey, params) },
    });
    assert.equal(textOf(result), 'signed hello');
    const outcome = lastOutcome(s.dir);
    assert.equal(outcome.status, 'ok');
    assert.equal(decisionAt(s.dir, outcome.decisionIndex as number).signed, true);
  });

  it('keeps the request signature at the gateway: the upstream never sees it', async () => {
    const params = { name: 'probe__meta_keys', arguments: {} };
    const result = await s.client.callTool({
      ...params,
      _meta: { [SIGNATURE_META_KEY]: await signature(s.callerKey, params) },
    });
    assert.equal(lastOutcome(s.dir).status, 'ok');
    const keys = JSON.parse(textOf(result)) as string[];
    assert.ok(!keys.includes(SIGNATURE_META_KEY), keys.join());
  });

  it('denies an unsigned request where the policy requires a signature', async () => {
    await assert.rejects(
      s.client.callTool({ name: 'probe__echo', arguments: { text: 'unsigned' } }),
      deniedWith(/Denied by policy/),
    );
    assert.equal(lastOutcome(s.dir).error, 'ERR_POLICY_DENIED');
  });

  it('denies a request signed with a key not bound to the caller, before policy', async () => {
    const params = { name: 'probe__pid', arguments: {} };
    const stranger = generateKeyPairSync('ed25519').privateKey;
    await assert.rejects(
      s.client.callTool({ ...params, _meta: { [SIGNATURE_META_KEY]: await signature(stranger, params) } }),
      deniedWith(/bad request signature/),
    );
    const outcome = lastOutcome(s.dir);
    assert.equal(outcome.error, 'ERR_REQUEST_SIGNATURE_INVALID');
    assert.equal(decisionAt(s.dir, outcome.decisionIndex as number).decision, 'none');
  });

  it('denies a signed request whose arguments were changed after signing', async () => {
    const params = { name: 'probe__echo', arguments: { text: 'pay 10' } };
    const sig = await signature(s.callerKey, params);
    await assert.rejects(
      s.client.callTool({
        name: 'probe__echo',
        arguments: { text: 'pay 1000' },
        _meta: { [SIGNATURE_META_KEY]: sig },
      }),
      deniedWith(/bad request signature/),
    );
    assert.equal(lastOutcome(s.dir).error, 'ERR_REQUEST_SIGNATURE_INVALID');
  });

  it('denies a replayed signature', async () => {
    const params = { name: 'probe__echo', arguments: { text: 'once' } };
    const meta = { [SIGNATURE_META_KEY]: await signature(s.callerKey, params) };
    assert.equal(textOf(await s.client.callTool({ ...params, _meta: meta })), 'once');
    await assert.rejects(s.client.callTool({ ...params, _meta: meta }), deniedWith(/already used/));
    assert.equal(lastOutcome(s.dir).error, 'ERR_REQUEST_SIGNATURE_REPLAYED');
  });
});

describe('an open gateway (identity.mode: none)', () => {
  it('publishes its result-signing key, and its results verify against it', async () => {
    const gw = await startTestGateway({ upstreams: { probe: probeUpstream() } });
    try {
      const jwks = (await (await fetch(new URL(ATTESTATION_JWKS_PATH, gw.listener.url))).json()) as {
        keys: { kid: string }[];
      };
      const client = await httpClient(gw.listener.url, 'modern');
      const result = await client.callTool({ name: 'probe__pid', arguments: {} });
      await client.close();
      const att = (result._meta as Record<string, { kid: string }>)[ATTESTATION_META_KEY]!;
      assert.deepEqual(
        jwks.keys.map((k: { kid: string }) => k.kid),
        [att.kid],
      );
      const tokenKeys = await fetch(new URL('/.well-known/jwks.json', gw.listener.url));
      assert.equal(tokenKeys.status, 404, 'an open gateway signs no tokens: no token key set');
      const dir = realpathSync(mkdtempSync(join(tmpdir(), 'pc-attest-open-')));
      writeFileSync(join(dir, 'jwks.json'), JSON.stringify(jwks));
      const r = await runCli(['attest', 'verify', save(dir, result), '--jwks', join(dir, 'jwks.json')]);
      assert.equal(r.code, 0, r.stderr);
    } finally {
      await gw.close();
    }
  });

  it('signs nothing and publishes no key with attest.results: false', async () => {
    const gw = await startTestGateway({ upstreams: { probe: probeUpstream() }, attest: { results: false } });
    try {
      const res = await fetch(new URL(ATTESTATION_JWKS_PATH, gw.listener.url));
      assert.equal(res.status, 404);
      const client = await httpClient(gw.listener.url, 'legacy');
      const result = await client.callTool({ name: 'probe__pid', arguments: {} });
      await client.close();
      assert.equal((result._meta as Record<string, unknown> | undefined)?.[ATTESTATION_META_KEY], undefined);
    } finally {
      await gw.close();
    }
  });
});

describe('a result-signing key rotated while the gateway runs (`portcullis attest rotate`)', () => {
  it('signs with the new key within a minute, and what the old one signed still verifies against the JWKS', async () => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'pc-attest-rotate-')));
    const configPath = join(dir, 'portcullis.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        listen: { host: '127.0.0.1', port: 0 },
        upstreams: { probe: probeUpstream() },
        policy: { files: [PERMIT_ALL_POLICY] },
        audit: { path: join(dir, 'audit.db') },
        state: { store: 'sqlite', path: join(dir, 'state.db') },
        attest: { keyDir: join(dir, 'attest-keys') },
      }),
    );
    let t = Date.now();
    const gw = await startGateway(loadConfigFile(configPath), silentLogger, { banner: false, now: () => t });
    const client = await httpClient(gw.listener.url, 'modern');
    const kidOf = (r: Record<string, unknown>) =>
      (r._meta as Record<string, { kid: string }>)[ATTESTATION_META_KEY]!.kid;
    try {
      const before = await client.callTool({ name: 'probe__pid', arguments: {} });
      const rotated = await runCli(['attest', 'rotate', '--config', configPath]);
      assert.equal(rotated.code, 0, rotated.stderr);
      const { event, kid, retired } = JSON.parse(rotated.stdout);
      assert.deepEqual([event, retired], ['attest-keys-rotated', [kidOf(before)]]);
      const jwks = new URL(ATTESTATION_JWKS_PATH, gw.listener.url).href;
      const published = (await (await fetch(jwks)).json()) as { keys: { kid: string }[] };
      assert.deepEqual(
        published.keys.map((k) => k.kid).sort(),
        [kidOf(before), kid].sort(),
        'published at once',
      );
      assert.equal(kidOf(await client.callTool({ name: 'probe__pid', arguments: {} })), kidOf(before));
      t += SIGNER_REFRESH_MS;
      const after = await client.callTool({ name: 'probe__pid', arguments: {} });
      assert.equal(kidOf(after), kid);
      for (const result of [before, after]) {
        const r = await runCli(['attest', 'verify', save(dir, result), '--jwks', jwks]);
        assert.equal(r.code, 0, r.stderr);
      }
    } finally {
      await client.close();
      await gw.close();
    }
  });
});
