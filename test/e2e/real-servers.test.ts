import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import type { RunningGateway } from '../../src/server.ts';
import {
  type Era,
  httpClient,
  NODE,
  PERMIT_ALL_POLICY,
  serverEntry,
  startTestGateway,
  textOf,
  wrapClient,
} from '../helpers.ts';

const sandbox = mkdtempSync(join(tmpdir(), 'portcullis-fs-'));
writeFileSync(join(sandbox, 'note.txt'), 'portcullis sandbox note\n');
// The servers run sandboxed: the one folder they may write, open to the sandbox user (nobody under root).
chmodSync(sandbox, 0o777);
const ownFolder = { network: 'none', writable: [sandbox] };

const upstreams = {
  fs: {
    transport: 'stdio',
    command: NODE,
    args: [serverEntry('@modelcontextprotocol/server-filesystem'), sandbox],
    sandbox: ownFolder,
  },
  memory: {
    transport: 'stdio',
    command: NODE,
    args: [serverEntry('@modelcontextprotocol/server-memory')],
    env: { MEMORY_FILE_PATH: join(sandbox, 'memory.jsonl') },
    sandbox: ownFolder,
  },
  everything: {
    transport: 'stdio',
    command: NODE,
    args: [serverEntry('@modelcontextprotocol/server-everything')],
  },
};

for (const era of ['legacy', 'modern'] as Era[]) {
  describe(`real npm MCP servers behind the gateway, ${era} client over HTTP`, () => {
    let gw: RunningGateway;
    before(async () => {
      gw = await startTestGateway({ upstreams });
    });
    after(() => gw.close());

    it('reads a file through server-filesystem', async () => {
      const client = await httpClient(gw.listener.url, era);
      const result = await client.callTool({
        name: 'fs__read_text_file',
        arguments: { path: join(sandbox, 'note.txt') },
      });
      assert.match(textOf(result), /portcullis sandbox note/);
      await client.close();
    });

    it('creates and reads back an entity through server-memory', async () => {
      const client = await httpClient(gw.listener.url, era);
      const entity = { name: `gw-${era}`, entityType: 'test', observations: ['seen through portcullis'] };
      await client.callTool({ name: 'memory__create_entities', arguments: { entities: [entity] } });
      const graph = await client.callTool({ name: 'memory__read_graph', arguments: {} });
      assert.match(textOf(graph), new RegExp(`gw-${era}`));
      await client.close();
    });

    it('relays server-everything tools, prompts and resources with their contents intact', async () => {
      const client = await httpClient(gw.listener.url, era);
      const echo = await client.callTool({ name: 'everything__echo', arguments: { message: 'ünïcode ✓' } });
      assert.match(textOf(echo), /ünïcode ✓/);
      const { prompts } = await client.listPrompts();
      assert.ok(prompts.some((p) => p.name.startsWith('everything__')));
      const { resources } = await client.listResources();
      assert.ok(resources.length > 0);
      const read = await client.readResource({ uri: resources[0]!.uri });
      assert.ok(read.contents.length > 0);
      await client.close();
    });
  });
}

describe('portcullis wrap: a local client over stdio', () => {
  it('lists and calls tools of the one upstream named by --server', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-wrap-'));
    const configPath = join(dir, 'portcullis.yaml');
    writeFileSync(configPath, stringify({ upstreams, policy: { files: [PERMIT_ALL_POLICY] } }));
    const client = await wrapClient(configPath, ['--server', 'fs']);
    const { tools } = await client.listTools();
    assert.ok(tools.every((t) => t.name.startsWith('fs__')));
    const result = await client.callTool({
      name: 'fs__read_text_file',
      arguments: { path: join(sandbox, 'note.txt') },
    });
    assert.match(textOf(result), /portcullis sandbox note/);
    await client.close();
  });
});
