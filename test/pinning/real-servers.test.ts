import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openServerPins } from '../../src/cli/server-pins.ts';
import { validateConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { otherTools } from '../../src/pinning/names.ts';
import { scanDefinition } from '../../src/pinning/scanner.ts';
import { listUpstreamTools } from '../../src/upstream/list-tools.ts';
import { splitName } from '../../src/upstream/naming.ts';
import { NODE, ownFolderSandbox, ROOT, serverEntry } from '../helpers.ts';

describe('the poisoning scanner on real MCP servers', () => {
  it('finds nothing in the filesystem, memory and everything servers, so none of their tools is quarantined', async () => {
    const sandbox = mkdtempSync(join(tmpdir(), 'pc-scan-real-'));
    const config = validateConfig({
      // Started as the gateway starts them: server pins (first use) and start records kept here.
      state: { store: 'sqlite', path: join(sandbox, 'state.db') },
      audit: { path: join(sandbox, 'audit.db') },
      upstreams: {
        fs: {
          transport: 'stdio',
          command: NODE,
          args: [serverEntry('@modelcontextprotocol/server-filesystem'), sandbox],
          sandbox: ownFolderSandbox(sandbox),
        },
        memory: {
          transport: 'stdio',
          command: NODE,
          args: [serverEntry('@modelcontextprotocol/server-memory')],
        },
        everything: {
          transport: 'stdio',
          command: NODE,
          args: [serverEntry('@modelcontextprotocol/server-everything'), 'stdio'],
        },
      },
    });
    const loaded = { config, baseDir: ROOT };
    const serverPins = openServerPins(loaded, silentLogger);
    const listed = await listUpstreamTools(loaded, silentLogger, serverPins.starts).finally(() =>
      serverPins.close(),
    );
    const prefixes = new Set(['fs', 'memory', 'everything']);
    const own = listed.map(({ item, upstream }) => ({
      upstream,
      name: splitName(String(item.name), prefixes)!.name,
      item,
    }));
    const names = new Map<string, string[]>();
    for (const t of own)
      names.set(t.upstream, [...(names.get(t.upstream) ?? []), t.name, String(t.item.name)]);
    assert.ok(
      new Set(own.map((t) => t.upstream)).size === 3 && own.length > 20,
      `${own.length} tools listed`,
    );
    const flagged = own
      .map((t) => ({
        tool: String(t.item.name),
        ...scanDefinition({ ...t.item, name: t.name }, otherTools(t.upstream, names)),
      }))
      .filter((r) => r.score > 0);
    assert.deepEqual(flagged, []);
  });
});
