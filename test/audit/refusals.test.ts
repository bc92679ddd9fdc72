import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { auditSchema } from '../../src/audit/config.ts';
import { metaOfLeaf } from '../../src/audit/meta.ts';
import { type Refusal, RefusalAggregator } from '../../src/audit/refusals.ts';
import type { AppendItem } from '../../src/audit/store.ts';
import { createLogger, silentLogger } from '../../src/observability/log.ts';

const knock = (remoteAddress: string, reason = 'expired', httpMethod = 'POST'): Refusal => ({
  remoteAddress,
  httpMethod,
  status: 401,
  code: 'ERR_TOKEN_EXPIRED',
  reason,
});

/** An aggregator on a clock the test moves, writing to a list. */
function world(opts: { maxAggregates?: number; write?: (item: AppendItem) => Promise<unknown> } = {}) {
  let t = 1_000_000;
  const written: Record<string, unknown>[] = [];
  const items: AppendItem[] = [];
  const agg = new RefusalAggregator({
    intervalMs: 60_000,
    maxAggregates: opts.maxAggregates ?? 100,
    now: () => t,
    log: silentLogger,
    write:
      opts.write ??
      (async (item) => {
        items.push(item);
        written.push(JSON.parse(item.leaf.toString()));
      }),
  });
  return {
    agg,
    written,
    items,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

const sorted = (records: Record<string, unknown>[]) =>
  records
    .map(({ id: _id, ...r }) => r)
    .sort((a, b) =>
      JSON.stringify([a.remoteAddress, a.reason]).localeCompare(JSON.stringify([b.remoteAddress, b.reason])),
    );

describe('requests refused at the door', () => {
  it('are recorded as one count per source address and reason per interval, written when the interval ends', async () => {
    const w = world();
    for (let i = 0; i < 3; i++) w.agg.add(knock('10.0.0.1'));
    w.agg.add(knock('10.0.0.1', 'bad_signature', 'GET'));
    w.agg.add(knock('10.0.0.2'));
    w.agg.add(knock('10.0.0.2', 'expired', 'DELETE'));
    await w.agg.tick();
    assert.deepEqual(w.written, [], 'nothing before the interval ends');
    w.advance(60_000);
    await w.agg.tick();
    const base = { v: 1, type: 'refusals', time: 1_020_000, from: 960_000, to: 1_020_000, overflow: false };
    assert.deepEqual(sorted(w.written), [
      {
        ...base,
        remoteAddress: '10.0.0.1',
        reason: 'bad_signature',
        code: 'ERR_TOKEN_EXPIRED',
        status: 401,
        count: 1,
        methods: { GET: 1 },
      },
      {
        ...base,
        remoteAddress: '10.0.0.1',
        reason: 'expired',
        code: 'ERR_TOKEN_EXPIRED',
        status: 401,
        count: 3,
        methods: { POST: 3 },
      },
      {
        ...base,
        remoteAddress: '10.0.0.2',
        reason: 'expired',
        code: 'ERR_TOKEN_EXPIRED',
        status: 401,
        count: 2,
        methods: { DELETE: 1, POST: 1 },
      },
    ]);
    assert.deepEqual(
      w.items.map((i) => i.meta),
      w.items.map((i) => metaOfLeaf(i.leaf)),
      'stored columns come from the record',
    );
    assert.equal(w.items[0]!.meta.decision, 'deny');
    await w.agg.tick();
    assert.equal(w.written.length, 3, 'an interval is written once');
  });

  it('write an ended interval when the next refusal arrives, and count that one in the next', async () => {
    const w = world();
    w.agg.add(knock('10.0.0.1'));
    w.advance(120_000);
    w.agg.add(knock('10.0.0.1'));
    await w.agg.tick();
    assert.equal(w.written.length, 1);
    assert.equal(w.written[0]!.count, 1);
    await w.agg.close();
    assert.equal(w.written.length, 2);
    assert.deepEqual([w.written[1]!.from, w.written[1]!.count], [1_080_000, 1]);
  });

  it('go past the bound of aggregates per interval into one catch-all with their count, never dropped', async () => {
    const w = world({ maxAggregates: 2 });
    for (let i = 0; i < 50; i++) w.agg.add(knock(`10.0.${i % 10}.1`));
    await w.agg.close();
    assert.equal(w.written.length, 3, 'two aggregates and the catch-all');
    const overflow = w.written.find((r) => r.overflow === true)!;
    assert.deepEqual(
      { remoteAddress: overflow.remoteAddress, reason: overflow.reason, count: overflow.count },
      { remoteAddress: null, reason: null, count: 40 },
    );
    assert.equal(
      w.written.reduce((n, r) => n + (r.count as number), 0),
      50,
      'every refusal is in a count',
    );
  });

  it('are written on close, with the interval cut short at that moment', async () => {
    const w = world();
    w.agg.add(knock('10.0.0.1'));
    w.advance(5_000);
    await w.agg.close();
    assert.deepEqual([w.written[0]!.from, w.written[0]!.to, w.written[0]!.count], [960_000, 1_005_000, 1]);
  });

  it('leave their counts in an error line when the log cannot take them', async () => {
    const lines: Record<string, unknown>[] = [];
    const agg = new RefusalAggregator({
      intervalMs: 60_000,
      maxAggregates: 10,
      now: () => 0,
      log: createLogger('debug', (l) => lines.push(JSON.parse(l))),
      write: async () => {
        throw new Error('disk on fire');
      },
    });
    agg.add(knock('10.0.0.1'));
    agg.add(knock('10.0.0.1'));
    await agg.close();
    const line = lines.find((l) => l.level === 'error');
    assert.equal(line?.msg, 'audit of refused requests failed');
    assert.equal((line.aggregates as { count: number }[])[0]!.count, 2);
  });

  it('are configured under audit.refusals with a one-minute interval and 100 aggregates by default', () => {
    assert.deepEqual(auditSchema.parse({}).refusals, { intervalMs: 60_000, maxAggregates: 100 });
    assert.throws(() => auditSchema.parse({ refusals: { interval: 5 } }));
  });
});
