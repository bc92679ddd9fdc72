import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/client';
import type { RunningGateway } from '../../src/server.ts';
import { httpClient, NODE, ROOT, startTestGateway } from '../helpers.ts';

const POLICY = `
@id("one-prompt")
permit(principal, action == Action::"prompts/get", resource == Prompt::"conf__test_simple_prompt");

@id("one-resource")
permit(principal, action == Action::"resources/read", resource == Resource::"test://static-text");

@id("follow-one-resource")
permit(principal, action == Action::"resources/subscribe", resource == Resource::"test://static-text");
`;

/** A modern `subscriptions/listen` following `uris`: the first SSE event, or the JSON error. */
async function listen(url: string, uris: string[]): Promise<{ type: string | null; first: unknown }> {
  const abort = new AbortController();
  const res = await fetch(url, {
    method: 'POST',
    signal: abort.signal,
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'subscriptions/listen',
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 'sub-1',
      method: 'subscriptions/listen',
      params: {
        notifications: { resourceSubscriptions: uris },
        _meta: {
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientCapabilities': {},
          'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
        },
      },
    }),
  });
  const type = res.headers.get('content-type');
  if (type !== 'text/event-stream') return { type, first: await res.json() };
  const reader = res.body!.getReader();
  let text = '';
  while (!text.includes('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
  abort.abort();
  const data = text.split('\n').find((l) => l.startsWith('data:'))!;
  return { type, first: JSON.parse(data.slice(5)) };
}

describe('discovery follows permission for prompts and resources', () => {
  let gw: RunningGateway;
  let client: Client;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-policy-discovery-'));
    writeFileSync(join(dir, 'p.cedar'), POLICY);
    gw = await startTestGateway({
      upstreams: {
        conf: {
          transport: 'stdio',
          command: NODE,
          args: [join(ROOT, 'test/fixtures/conformance-server.ts'), '--stdio'],
        },
      },
      policy: { files: [join(dir, 'p.cedar')] },
    });
    client = await httpClient(gw.listener.url, 'legacy');
  });
  after(async () => {
    await client?.close();
    await gw?.close();
  });

  it('lists only the permitted prompt and resource, and no tools', async () => {
    assert.deepEqual(
      (await client.listPrompts()).prompts.map((p) => p.name),
      ['conf__test_simple_prompt'],
    );
    assert.deepEqual(
      (await client.listResources()).resources.map((r) => r.uri),
      ['test://static-text'],
    );
    assert.deepEqual((await client.listTools()).tools, []);
  });

  it('serves the permitted prompt and resource', async () => {
    const prompt = await client.getPrompt({ name: 'conf__test_simple_prompt' });
    assert.ok(prompt.messages.length > 0);
    const read = await client.readResource({ uri: 'test://static-text' });
    assert.equal(read.contents[0]?.uri, 'test://static-text');
  });

  it('authorizes each resource a listen follows as a subscription of its own', async () => {
    const allowed = await listen(gw.listener.url, ['test://static-text']);
    assert.equal(allowed.type, 'text/event-stream');
    assert.equal((allowed.first as { method: string }).method, 'notifications/subscriptions/acknowledged');
    const hidden = await listen(gw.listener.url, ['test://static-text', 'test://watched-resource']);
    assert.equal(hidden.type, 'application/json');
    assert.match((hidden.first as { error: { message: string } }).error.message, /Unknown resource/);
  });

  it('answers a hidden prompt or resource like a missing one', async () => {
    const message = async (p: Promise<unknown>) => ((await p.catch((e) => e)) as Error).message;
    assert.equal(
      await message(client.getPrompt({ name: 'conf__test_prompt_with_image' })),
      await message(client.getPrompt({ name: 'conf__no_such_prompt' })),
    );
    assert.match(await message(client.readResource({ uri: 'test://static-binary' })), /Unknown resource/);
  });
});
