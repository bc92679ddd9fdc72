import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunningGateway } from '../../src/server.ts';
import { httpClient, NODE, ROOT, startTestGateway } from '../helpers.ts';

describe('a legacy client subscribing to a resource of a modern upstream', () => {
  let gw: RunningGateway;
  before(async () => {
    // Modern only: a legacy client of an upstream that offers a 2025-era session gets that session instead.
    const fixture = [join(ROOT, 'test/fixtures/conformance-server.ts'), '--stdio', '--modern-only'];
    gw = await startTestGateway({
      upstreams: { conf: { transport: 'stdio', command: NODE, args: fixture } },
    });
  });
  after(() => gw.close());

  it('receives resources/updated for the URI it subscribed to, through a listen the gateway holds upstream', {
    timeout: 20_000,
  }, async () => {
    const client = await httpClient(gw.listener.url, 'legacy');
    const updated = new Promise<string>((resolve) => {
      client.setNotificationHandler('notifications/resources/updated', (n) => resolve(n.params.uri));
    });
    await client.subscribeResource({ uri: 'test://static-text' });
    await client.callTool({
      name: 'conf__test_trigger_resource_update',
      arguments: { uri: 'test://static-text' },
    });
    assert.equal(await updated, 'test://static-text');
    await client.unsubscribeResource({ uri: 'test://static-text' });
    await client.close();
  });
});
