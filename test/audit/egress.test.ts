import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { auditSchema } from '../../src/audit/config.ts';
import { EgressAggregator, type EgressAttempt } from '../../src/audit/egress.ts';
import { metaOfLeaf } from '../../src/audit/meta.ts';
import type { AppendItem } from '../../src/audit/store.ts';
import { createLogger } from '../../src/observability/log.ts';

const attempt = (host: string, allowed: boolean, over: Partial<EgressAttempt> = {}): EgressAttempt => ({
  upstream: 'fetch',
  host,
  port: 443,
  method: 'CONNECT',
  allowed,
  ...over,
});

/** An aggregator on a clock the test moves, writing to a list. */
function world(opts: { maxAggregates?: number; write?: (item: AppendItem) => Promise<unknown> } = {}) {
  let t = 5_000_000;
  const items: AppendItem[] = [];
  const lines: Record<string, unknown>[] = [];
  const agg = new EgressAggregator({
    intervalMs: 10_000,
    maxAggregates: opts.maxAggregates ?? 100,
    now: () => t,
    log: createLogger('error', (line) => void lines.push(JSON.parse(line))),
    write:
      opts.write ??
      (async (item) => {
        items.push(item);
      }),
  });
  const written = () =>
    items.map((i) => {
      const { id: _id, ...rest } = JSON.parse(i.leaf.toString()) as Record<string, unknown>;
      return rest;
    });
  const advance = (ms: number) => {
    t += ms;
  };
  return { agg, items, written, lines, advance };
}

describe('a sandboxed upstream’s connections in the audit log', () => {
  it('are counted per upstream, host, port and method, allowed and refused apart, and written when the interval ends', async () => {
    const w = world();
    w.agg.add(attempt('api.github.com', true));
    w.agg.add(attempt('api.github.com', true));
    w.agg.add(attempt('evil.example', false));
    w.agg.add(attempt('evil.example', false, { port: 80, method: 'HTTP' }));
    await w.agg.tick();
    assert.deepEqual(w.items, [], 'nothing before the interval ends');
    w.advance(10_000);
    await w.agg.tick();
    const base = { v: 1, type: 'egress', time: 5_010_000, from: 5_000_000, to: 5_010_000, upstream: 'fetch' };
    assert.deepEqual(w.written(), [
      {
        ...base,
        host: 'api.github.com',
        port: 443,
        method: 'CONNECT',
        count: 2,
        allowed: 2,
        refused: 0,
        overflow: false,
      },
      {
        ...base,
        host: 'evil.example',
        port: 443,
        method: 'CONNECT',
        count: 1,
        allowed: 0,
        refused: 1,
        overflow: false,
      },
      {
        ...base,
        host: 'evil.example',
        port: 80,
        method: 'HTTP',
        count: 1,
        allowed: 0,
        refused: 1,
        overflow: false,
      },
    ]);
  });

  it('are indexed by the upstream as principal and by deny when any was refused', async () => {
    const w = world();
    w.agg.add(attempt('api.github.com', true));
    w.agg.add(attempt('evil.example', false));
    await w.agg.close();
    const metas = w.items.map((i) => metaOfLeaf(i.leaf));
    assert.deepEqual(
      metas.map((m) => [m?.kind, m?.principal, m?.decision, m?.tool, m?.session]),
      [
        ['egress', 'upstream:fetch', 'allow', '', ''],
        ['egress', 'upstream:fetch', 'deny', '', ''],
      ],
    );
    assert.deepEqual(
      w.items.map((i) => i.meta),
      metas,
      'the stored columns are the ones the signed leaf implies',
    );
  });

  it('go past the bound of aggregates per interval into one catch-all, never dropped', async () => {
    const w = world({ maxAggregates: 2 });
    for (let i = 0; i < 5; i++) w.agg.add(attempt(`h${i}.example`, i % 2 === 0));
    await w.agg.close();
    const records = w.written();
    assert.equal(records.length, 3, 'two aggregates and the catch-all');
    const overflow = records.find((r) => r.overflow === true)!;
    assert.deepEqual(
      [overflow.upstream, overflow.host, overflow.count, overflow.allowed, overflow.refused],
      [null, null, 3, 2, 1],
    );
    assert.equal(metaOfLeaf(w.items.at(-1)!.leaf)?.principal, 'upstream:*');
    assert.equal(
      records.reduce((n, r) => n + (r.count as number), 0),
      5,
    );
  });

  it('keeps a host name the upstream chose bounded and well-formed', async () => {
    const w = world();
    w.agg.add(attempt(`${'a'.repeat(300)}\ud800`, false));
    w.agg.add(attempt('x\ud800', false));
    await w.agg.close();
    const hosts = w.written().map((r) => r.host as string);
    assert.equal(hosts[0]!.length, 253);
    assert.equal(hosts[1], 'x\ufffd');
  });

  it('say in the error log what the audit log could not take, with the counts', async () => {
    const w = world({ write: async () => Promise.reject(new Error('disk full')) });
    w.agg.add(attempt('evil.example', false));
    w.agg.add(attempt('evil.example', false));
    await w.agg.close();
    const line = w.lines.find((l) => l.msg === 'audit of sandbox egress failed');
    assert.ok(line, 'logged');
    assert.equal((line.aggregates as { refused: number }[])[0]!.refused, 2);
  });

  it('are configured under audit.egress with a ten-second interval and 100 aggregates by default', () => {
    assert.deepEqual(auditSchema.parse({}).egress, { intervalMs: 10_000, maxAggregates: 100 });
    assert.throws(() => auditSchema.parse({ egress: { intervalMs: 10 } }), /intervalMs/);
    assert.throws(() => auditSchema.parse({ egress: { every: 1 } }), /every/);
  });
});
