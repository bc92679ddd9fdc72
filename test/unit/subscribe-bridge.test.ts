import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JSONRPC } from '../../src/errors.ts';
import { ANONYMOUS } from '../../src/identity/principal.ts';
import type { JsonRpcMessage } from '../../src/jsonrpc.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { newSession } from '../../src/session.ts';
import type { Aggregator } from '../../src/upstream/aggregate.ts';
import { UpstreamConnection } from '../../src/upstream/connection.ts';
import { bridgeSubscribe } from '../../src/upstream/subscribe-bridge.ts';

describe("a legacy client's subscribe bridged to a modern upstream", () => {
  it('is refused with a timeout, logged with the upstream and the cause, when the listen is never acknowledged', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const warnings: { msg: string; fields: Record<string, unknown> }[] = [];
    const agg = {
      log: {
        ...silentLogger,
        warn: (msg: string, fields: Record<string, unknown> = {}) => warnings.push({ msg, fields }),
      },
      timeoutOf: () => 30_000,
      gate: (_session: unknown, sink: unknown) => sink,
      upstreamParams: (_conn: unknown, _session: unknown, params: unknown) => params,
    } as unknown as Aggregator;
    const sent: JsonRpcMessage[] = [];
    const silentUpstream = {
      start: async () => {},
      send: async (m: JsonRpcMessage) => void sent.push(m),
      close: async () => {},
    };
    const conn = new UpstreamConnection(silentUpstream, { name: 'quiet', timeoutMs: 30_000 });
    const session = newSession({
      id: 's',
      key: 's',
      principal: ANONYMOUS,
      era: 'legacy',
      protocolVersion: '2025-11-25',
    });

    const answer = bridgeSubscribe(agg, session, conn, 'resources/subscribe', 'test://r');
    t.mock.timers.tick(30_000);
    const refusal = await answer;

    assert.equal(refusal?.code, JSONRPC.UPSTREAM_UNAVAILABLE);
    const warning = warnings.find((w) => /acknowledge/.test(w.msg));
    assert.equal(warning?.fields.upstream, 'quiet');
    assert.match(String(warning?.fields.cause), /no acknowledgement within 30000 ms/);
    assert.ok(
      sent.some((m) => 'method' in m && m.method === 'notifications/cancelled'),
      'the listen is withdrawn',
    );
    assert.equal(session.subscriptions.size, 0);
  });
});
