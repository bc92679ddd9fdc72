import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunningGateway } from '../../src/server.ts';
import { SqliteRecordStore } from '../../src/state/records-sqlite.ts';
import { httpClient, probeUpstream, startTestGateway, textOf } from '../helpers.ts';

describe('a static credential through the gateway', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-static-'));
  const variable = `PORTCULLIS_STATIC_KEY_${process.pid}`;
  const seen: IncomingHttpHeaders[] = [];
  let inner: RunningGateway;
  let outer: RunningGateway;

  before(async () => {
    process.env[variable] = 'k-static-123';
    inner = await startTestGateway({ upstreams: { probe: probeUpstream() } });
    inner.listener.server.on('request', (req) => seen.push(req.headers));
    outer = await startTestGateway({
      upstreams: {
        remote: {
          transport: 'http',
          url: inner.listener.url,
          credentials: { kind: 'static', headers: { 'X-Api-Key': `env:${variable}` } },
        },
      },
      state: { store: 'sqlite', path: join(dir, 'state.db') },
    });
  });
  after(async () => {
    await inner.close();
    delete process.env[variable];
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends the referenced header with each call, leases it per caller, and revokes the lease on shutdown', async () => {
    const client = await httpClient(outer.listener.url, 'legacy');
    assert.equal(
      textOf(await client.callTool({ name: 'remote__probe__echo', arguments: { text: 'a' } })),
      'a',
    );
    assert.equal(
      textOf(await client.callTool({ name: 'remote__probe__echo', arguments: { text: 'b' } })),
      'b',
    );
    await client.close();
    const calls = seen.filter((h) => h['x-api-key'] !== undefined);
    assert.equal(calls.length, 2);
    assert.ok(calls.every((h) => h['x-api-key'] === 'k-static-123'));

    const store = new SqliteRecordStore(join(dir, 'state.db'));
    try {
      const active = await store.find('lease', { status: ['active'] });
      const leases = active.filter((r) => !r.id.startsWith('run:'));
      assert.equal(leases.length, 1, 'one lease serves the caller for both calls');
      await outer.close();
      const after = await store.get('lease', leases[0]!.id);
      assert.equal(after?.status, 'revoked');
      assert.equal(after?.body.reason, 'shutdown');
    } finally {
      await store.close();
    }
  });
});
