import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { RunningGateway } from '../../src/server.ts';
import { type Era, httpClient, NODE, ROOT, startTestGateway, textOf } from '../helpers.ts';

const FIXTURE = join(ROOT, 'test/fixtures/dual-era-server.ts');

/** Starts the dual-era fixture over HTTP; resolves with its URL and the child to kill. */
async function startFixture(...flags: string[]): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(NODE, [FIXTURE, '--port', '0', ...flags], { stdio: ['ignore', 'pipe', 'ignore'] });
  const line = await new Promise<string>((resolve) =>
    createInterface({ input: child.stdout! }).once('line', resolve),
  );
  return { url: (JSON.parse(line) as { url: string }).url, child };
}

const completion = (prompt: string) => ({
  role: 'assistant' as const,
  content: { type: 'text' as const, text: `an answer to "${prompt}"` },
  model: 'test-model',
});

const promptOf = (params: { messages: { content: unknown }[] }): string => {
  const content = params.messages[0]?.content as { text?: string } | undefined;
  return content?.text ?? '';
};

/** A 2025-11-25 client (SDK v2) that answers sampling requests. */
async function samplingClient(url: string): Promise<Client> {
  const client = new Client({ name: 'sampler', version: '1.0.0' }, { capabilities: { sampling: {} } });
  client.setRequestHandler('sampling/createMessage', async (request) => completion(promptOf(request.params)));
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

/** The same, with the v1 SDK many clients still ship. */
async function v1SamplingClient(url: string): Promise<V1Client> {
  const client = new V1Client({ name: 'sampler-v1', version: '1.0.0' }, { capabilities: { sampling: {} } });
  client.setRequestHandler(CreateMessageRequestSchema, async (request) =>
    completion(promptOf(request.params)),
  );
  await client.connect(new V1Transport(new URL(url)));
  return client;
}

async function eraSeenBy(url: string, era: Era): Promise<string> {
  const client = await httpClient(url, era);
  try {
    return textOf(await client.callTool({ name: 'dual__era', arguments: {} }));
  } finally {
    await client.close();
  }
}

describe('a 2025-11-25 client behind an upstream that speaks both eras', () => {
  for (const transport of ['http', 'stdio'] as const) {
    describe(`over ${transport}`, () => {
      let fixture: { url: string; child: ChildProcess } | undefined;
      let gw: RunningGateway;
      before(async () => {
        if (transport === 'http') fixture = await startFixture();
        const upstream = fixture
          ? { transport: 'http', url: fixture.url, timeoutMs: 600_000, isolation: 'session' }
          : {
              transport: 'stdio',
              command: NODE,
              args: [FIXTURE, '--stdio'],
              timeoutMs: 600_000,
              isolation: 'session',
            };
        gw = await startTestGateway({ upstreams: { dual: upstream } });
      });
      after(async () => {
        await gw.close();
        fixture?.child.kill();
      });

      it('gets a 2025-11-25 session upstream, so a sampling request reaches it and its answer goes back', {
        timeout: 30_000,
      }, async () => {
        const client = await samplingClient(gw.listener.url);
        const result = await client.callTool({ name: 'dual__ask_llm', arguments: { prompt: 'capital?' } });
        assert.equal(result.isError, undefined);
        assert.equal(textOf(result), 'LLM said: an answer to "capital?"');
        assert.equal(textOf(await client.callTool({ name: 'dual__era', arguments: {} })), 'legacy');
        await client.close();
      });
    });
  }

  describe('with the v1 SDK client', () => {
    let fixture: { url: string; child: ChildProcess };
    let gw: RunningGateway;
    before(async () => {
      fixture = await startFixture();
      gw = await startTestGateway({
        // Only a session's own upstream instance may ask its client for anything.
        upstreams: {
          dual: { transport: 'http', url: fixture.url, timeoutMs: 600_000, isolation: 'session' },
        },
      });
    });
    after(async () => {
      await gw.close();
      fixture.child.kill();
    });

    it('does sampling end to end through the gateway', { timeout: 30_000 }, async () => {
      const client = await v1SamplingClient(gw.listener.url);
      const result = await client.callTool({ name: 'dual__ask_llm', arguments: { prompt: 'v1?' } });
      assert.equal(result.isError, undefined);
      assert.equal(textOf(result), 'LLM said: an answer to "v1?"');
      await client.close();
    });
  });
});

describe('the era an upstream is reached in follows the era of the client', () => {
  let fixture: { url: string; child: ChildProcess };
  before(async () => {
    fixture = await startFixture();
  });
  after(() => fixture.child.kill());

  for (const order of [
    ['legacy', 'modern'],
    ['modern', 'legacy'],
  ] as Era[][]) {
    it(`pairs each client with its own era when a ${order[0]} client of the same caller came first`, {
      timeout: 30_000,
    }, async () => {
      const gw = await startTestGateway({
        upstreams: { dual: { transport: 'http', url: fixture.url, timeoutMs: 600_000 } },
      });
      try {
        for (const era of [...order, ...order]) assert.equal(await eraSeenBy(gw.listener.url, era), era);
      } finally {
        await gw.close();
      }
    });
  }
});

describe('an upstream that offers one era only', () => {
  let modernOnly: { url: string; child: ChildProcess };
  let legacyOnly: { url: string; child: ChildProcess };
  let gw: RunningGateway;
  before(async () => {
    [modernOnly, legacyOnly] = await Promise.all([
      startFixture('--modern-only'),
      startFixture('--legacy-only'),
    ]);
    gw = await startTestGateway({
      upstreams: {
        modern: { transport: 'http', url: modernOnly.url, prefix: 'dual', timeoutMs: 600_000 },
        legacy: { transport: 'http', url: legacyOnly.url, prefix: 'old', timeoutMs: 600_000 },
      },
    });
  });
  after(async () => {
    await gw.close();
    modernOnly.child.kill();
    legacyOnly.child.kill();
  });

  it('serves a 2025-11-25 client from a 2026-07-28-only upstream, its input_required bridged to a sampling request', {
    timeout: 30_000,
  }, async () => {
    const client = await samplingClient(gw.listener.url);
    const result = await client.callTool({ name: 'dual__ask_llm', arguments: { prompt: 'bridged?' } });
    assert.equal(textOf(result), 'LLM said: an answer to "bridged?"');
    assert.equal(textOf(await client.callTool({ name: 'dual__era', arguments: {} })), 'modern');
    await client.close();
  });

  it('serves a 2026-07-28 client from a 2025-11-25-only upstream', { timeout: 30_000 }, async () => {
    const client = await httpClient(gw.listener.url, 'modern');
    assert.equal(textOf(await client.callTool({ name: 'old__era', arguments: {} })), 'legacy');
    await client.close();
  });
});
