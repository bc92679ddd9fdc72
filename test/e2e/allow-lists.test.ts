import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/client';
import { SignJWT } from 'jose';
import type { CallContext } from '../../src/pipeline/context.ts';
import type { Stage } from '../../src/pipeline/runner.ts';
import {
  failsWith,
  httpClient,
  initializeBody,
  NODE,
  post,
  probeUpstream,
  ROOT,
  startAuthTestGateway,
  TEST_RESOURCE,
  type TokenLists,
} from '../helpers.ts';

const TOOL = 'conf__test_simple_text';
const PROMPT = 'conf__test_prompt_with_arguments';

/** The error code of every call, as the audit stage sees it. */
const codes: (string | undefined)[] = [];
const recorder: Stage = {
  name: 'test-recorder',
  run: (ctx: CallContext) => void codes.push(ctx.error?.code),
};

const unknown = (kind: string) => (err: unknown) => {
  failsWith(-32602, new RegExp(`Unknown ${kind}`))(err);
  assert.equal(codes.at(-1), 'ERR_UNKNOWN_TARGET');
  return true;
};

const confUpstream = {
  transport: 'stdio',
  command: NODE,
  args: [join(ROOT, 'test/fixtures/conformance-server.ts'), '--stdio'],
};

describe("a token's allow lists cover tools, prompts, resources, completions and subscriptions", () => {
  let gw: Awaited<ReturnType<typeof startAuthTestGateway>>;
  const clients: Client[] = [];
  const connect = async (lists: TokenLists, era: 'legacy' | 'modern' = 'legacy') => {
    const { token } = await gw.token(`agent-${clients.length}`, [TOOL], 600, lists);
    const client = await httpClient(gw.url, era, { authorization: `Bearer ${token}` });
    clients.push(client);
    return { client, token };
  };

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-allow-lists-'));
    gw = await startAuthTestGateway(
      {
        upstreams: { conf: confUpstream },
      },
      dir,
    );
    (gw.running.gateway.pipeline.terminal as Stage[]).push(recorder);
  });
  after(async () => {
    for (const c of clients) await c.close();
    await gw?.running.close();
  });

  it('gives a token naming only tools no resource, template, prompt or completion', async () => {
    const { client } = await connect({});
    assert.deepEqual(
      (await client.listTools()).tools.map((t) => t.name),
      [TOOL],
    );
    assert.deepEqual((await client.listResources()).resources, []);
    assert.deepEqual((await client.listResourceTemplates()).resourceTemplates, []);
    assert.deepEqual((await client.listPrompts()).prompts, []);
    await assert.rejects(client.readResource({ uri: 'test://static-text' }), unknown('resource'));
    await assert.rejects(client.getPrompt({ name: 'conf__test_simple_prompt' }), unknown('prompt'));
    await assert.rejects(
      client.complete({ ref: { type: 'ref/prompt', name: PROMPT }, argument: { name: 'arg1', value: 'pa' } }),
      unknown('prompt'),
    );
    await assert.rejects(client.subscribeResource({ uri: 'test://watched-resource' }), unknown('resource'));
  });

  it('shows and serves only the prompts and resources a token names, templates included', async () => {
    const { client } = await connect({
      prompts: [PROMPT],
      resources: ['test://static-text', 'test://template/*'],
    });
    assert.deepEqual(
      (await client.listPrompts()).prompts.map((p) => p.name),
      [PROMPT],
    );
    assert.deepEqual(
      (await client.listResources()).resources.map((r) => r.uri),
      ['test://static-text'],
    );
    assert.deepEqual(
      (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate),
      ['test://template/{id}/data'],
    );
    const read = await client.readResource({ uri: 'test://static-text' });
    assert.equal(read.contents[0]?.uri, 'test://static-text');
    const templated = await client.readResource({ uri: 'test://template/7/data' });
    assert.equal(templated.contents[0]?.uri, 'test://template/7/data');
    await assert.rejects(client.readResource({ uri: 'test://static-binary' }), unknown('resource'));
    assert.ok(
      (await client.getPrompt({ name: PROMPT, arguments: { arg1: 'a', arg2: 'b' } })).messages.length,
    );
    await assert.rejects(client.getPrompt({ name: 'conf__test_simple_prompt' }), unknown('prompt'));
  });

  it('checks a completion against the prompt or resource it completes', async () => {
    const { client } = await connect({ prompts: [PROMPT], resources: ['test://template/*'] });
    const words = await client.complete({
      ref: { type: 'ref/prompt', name: PROMPT },
      argument: { name: 'arg1', value: 'pa' },
    });
    assert.deepEqual(words.completion.values, ['paris', 'park', 'party']);
    const ids = await client.complete({
      ref: { type: 'ref/resource', uri: 'test://template/{id}/data' },
      argument: { name: 'id', value: '1' },
    });
    assert.deepEqual(ids.completion.values, ['1', '123']);
    await assert.rejects(
      client.complete({
        ref: { type: 'ref/prompt', name: 'conf__test_prompt_with_embedded_resource' },
        argument: { name: 'resourceUri', value: 't' },
      }),
      unknown('prompt'),
    );
  });

  it('lets a token subscribe only to the resources it names, in both eras', async () => {
    const { client, token } = await connect({ resources: ['test://static-text'] });
    await client.subscribeResource({ uri: 'test://static-text' });
    await assert.rejects(client.subscribeResource({ uri: 'test://watched-resource' }), unknown('resource'));
    const listen = await post(
      gw.url,
      JSON.stringify({
        jsonrpc: '2.0',
        id: 'sub-1',
        method: 'subscriptions/listen',
        params: {
          notifications: { resourceSubscriptions: ['test://watched-resource'] },
          _meta: {
            'io.modelcontextprotocol/protocolVersion': '2026-07-28',
            'io.modelcontextprotocol/clientCapabilities': {},
            'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
          },
        },
      }),
      {
        authorization: `Bearer ${token}`,
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': 'subscriptions/listen',
      },
    );
    assert.match(String((listen.json as { error?: { message: string } }).error?.message), /Unknown resource/);
    assert.equal(codes.at(-1), 'ERR_UNKNOWN_TARGET');
  });
});

describe('allow lists in the tokens of an issuer configured to carry them (allowListClaims)', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'ext-1', alg: 'ES256', use: 'sig' };
  let jwks: Server;
  let issuer: string;
  let gw: Awaited<ReturnType<typeof startAuthTestGateway>>;
  const clients: Client[] = [];
  const sign = (claims: Record<string, unknown>) =>
    new SignJWT({ sub: 'ext-user', ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: 'ext-1' })
      .setIssuer(issuer)
      .setAudience(TEST_RESOURCE)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);

  before(async () => {
    jwks = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    issuer = `http://127.0.0.1:${(jwks.address() as { port: number }).port}`;
    gw = await startAuthTestGateway(
      {
        upstreams: { conf: confUpstream },
        identity: {
          issuers: [
            {
              issuer,
              discovery: 'none',
              jwksUri: `${issuer}/jwks`,
              algorithms: ['ES256'],
              allowListClaims: true,
            },
          ],
          fetch: { allowLoopback: true },
        },
      },
      mkdtempSync(join(tmpdir(), 'pc-allow-lists-ext-')),
    );
  });
  after(async () => {
    for (const c of clients) await c.close();
    await gw?.running.close();
    jwks?.close();
  });

  it('honours the claims of an external JWT: the kinds it names, and nothing of those it does not', async () => {
    const token = await sign({ allowed_tools: [TOOL], allowed_resources: ['test://static-text'] });
    const client = await httpClient(gw.url, 'legacy', { authorization: `Bearer ${token}` });
    clients.push(client);
    assert.deepEqual(
      (await client.listResources()).resources.map((r) => r.uri),
      ['test://static-text'],
    );
    assert.deepEqual((await client.listPrompts()).prompts, []);
    await assert.rejects(client.getPrompt({ name: 'conf__test_simple_prompt' }), /Unknown prompt/);
    await assert.rejects(client.readResource({ uri: 'test://static-binary' }), /Unknown resource/);
  });

  it('refuses an external JWT that names nothing it allows, or names it wrongly', async () => {
    for (const claims of [{}, { allowed_resources: 'test://*' }]) {
      const res = await post(gw.url, initializeBody(), { authorization: `Bearer ${await sign(claims)}` });
      assert.equal(res.status, 401, JSON.stringify(claims));
    }
  });
});

describe('a resource allowed by pattern behind a template the token cannot list, with several upstreams', () => {
  it('is still routed to the upstream whose template it matches', async () => {
    const gw = await startAuthTestGateway(
      { upstreams: { conf: confUpstream, probe: probeUpstream() } },
      mkdtempSync(join(tmpdir(), 'pc-allow-lists-route-')),
    );
    const { token } = await gw.token('agent-route', [], 600, { resources: ['test://template/7/*'] });
    const client = await httpClient(gw.url, 'legacy', { authorization: `Bearer ${token}` });
    try {
      assert.deepEqual((await client.listResourceTemplates()).resourceTemplates, []);
      const read = await client.readResource({ uri: 'test://template/7/data' });
      assert.equal(read.contents[0]?.uri, 'test://template/7/data');
      await assert.rejects(client.readResource({ uri: 'test://template/8/data' }), /Unknown resource/);
    } finally {
      await client.close();
      await gw.running.close();
    }
  });
});
