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
    intervalMs: 60_000,
    maxAggregates: opts.maxAggregates ?? 20,
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

const named = { malformed: false, truncated: false, overflow: false };

describe('a sandboxed upstream’s connections in the audit log', () => {
  it('are counted per host, port and method, allowed and refused apart, and written when the interval ends', async () => {
    const w = world();
    w.agg.add(attempt('api.github.com', true));
    w.agg.add(attempt('api.github.com', true));
    w.agg.add(attempt('evil.example', false));
    w.agg.add(attempt('evil.example', false, { port: 80, method: 'HTTP' }));
    await w.agg.tick();
    assert.deepEqual(w.items, [], 'nothing before the interval ends');
    w.advance(60_000);
    await w.agg.tick();
    const base = { v: 1, type: 'egress', time: 5_040_000, from: 4_980_000, to: 5_040_000, upstream: 'fetch' };
    assert.deepEqual(w.written(), [
      { ...base, ...named, allowed: true, host: 'api.github.com', port: 443, method: 'CONNECT', count: 2 },
      { ...base, ...named, allowed: false, host: 'evil.example', port: 443, method: 'CONNECT', count: 1 },
      { ...base, ...named, allowed: false, host: 'evil.example', port: 80, method: 'HTTP', count: 1 },
    ]);
  });

  it('are indexed by the upstream as principal and by the decision, as the signed leaf says', async () => {
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
    );
  });

  it('bound each upstream’s allowed and refused apart: many refused hosts push no allowed connection out of a named record', async () => {
    const w = world({ maxAggregates: 2 });
    for (let i = 0; i < 5; i++) w.agg.add(attempt(`probe${i}.example`, false, { upstream: 'evil' }));
    w.agg.add(attempt('allowed.example', true, { upstream: 'evil' }));
    w.agg.add(attempt('api.github.com', true, { upstream: 'other' }));
    await w.agg.close();
    const records = w.written();
    const line = (r: Record<string, unknown>) =>
      `${r.upstream} ${r.allowed} ${r.host} ${r.count}${r.overflow ? ' overflow' : ''}`;
    assert.deepEqual(records.map(line), [
      'evil false probe0.example 1',
      'evil false probe1.example 1',
      'evil true allowed.example 1',
      'other true api.github.com 1',
      'evil false null 3 overflow',
    ]);
    assert.equal(
      metaOfLeaf(w.items.at(-1)!.leaf)?.principal,
      'upstream:evil',
      'the catch-all names its upstream',
    );
    assert.equal(
      records.reduce((n, r) => n + (r.count as number), 0),
      7,
      'every attempt counted',
    );
  });

  it('counts a target that does not parse as refused, with no host or port', async () => {
    const w = world();
    w.agg.add(attempt('', false, { port: 0, malformed: true }));
    w.agg.add(attempt('', false, { port: 0, malformed: true }));
    await w.agg.close();
    assert.deepEqual(
      w.written().map((r) => [r.allowed, r.host, r.port, r.malformed, r.count]),
      [[false, null, null, true, 2]],
    );
  });

  it('keeps the end of a host name longer than DNS allows, and says it was cut', async () => {
    const w = world();
    const long = `${'a'.repeat(300)}.allowed.example.com`;
    w.agg.add(attempt(long, true));
    await w.agg.close();
    const [r] = w.written();
    assert.equal((r!.host as string).length, 253);
    assert.ok((r!.host as string).endsWith('.allowed.example.com'));
    assert.equal(r!.truncated, true);
  });

  it('say in the error log what the audit log could not take, with the counts', async () => {
    const w = world({ write: async () => Promise.reject(new Error('disk full')) });
    w.agg.add(attempt('evil.example', false));
    w.agg.add(attempt('evil.example', false));
    await w.agg.close();
    const line = w.lines.find((l) => l.msg === 'audit of sandbox egress failed');
    assert.ok(line, 'logged');
    assert.deepEqual(
      (line.aggregates as { host: string; count: number; to: number }[]).map((a) => [a.host, a.count, a.to]),
      [['evil.example', 2, 5_000_000]],
    );
  });

  it('are configured under audit.egress with a one-minute interval and 20 aggregates by default', () => {
    assert.deepEqual(auditSchema.parse({}).egress, { intervalMs: 60_000, maxAggregates: 20 });
    assert.throws(() => auditSchema.parse({ egress: { intervalMs: 10 } }), /intervalMs/);
    assert.throws(() => auditSchema.parse({ egress: { every: 1 } }), /every/);
  });
});
