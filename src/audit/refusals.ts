import { randomUUID } from 'node:crypto';
import type { Logger } from '../observability/log.ts';
import { item } from './records.ts';
import type { AppendItem } from './store.ts';

/** One request refused at the door (no or bad credentials), before any call existed. */
export interface Refusal {
  readonly remoteAddress: string;
  readonly httpMethod: string;
  readonly status: number;
  readonly code: string;
  /** Why, in the identity layer's words; never the credential itself. */
  readonly reason: string;
}

/** The refusals of one source for one reason over an interval; the catch-all has no source or reason. */
export interface RefusalAggregate {
  readonly from: number;
  readonly to: number;
  readonly remoteAddress: string | null;
  readonly reason: string | null;
  readonly code: string | null;
  readonly status: number | null;
  count: number;
  /** Refusals by HTTP method. */
  readonly methods: Record<string, number>;
  /** Set on the catch-all: refusals of sources and reasons past the bound. */
  readonly overflow: boolean;
}

export interface RefusalAggregatorOptions {
  readonly intervalMs: number;
  /** Distinct (source, reason) aggregates per interval; refusals past it go to one catch-all. */
  readonly maxAggregates: number;
  readonly now: () => number;
  readonly write: (item: AppendItem) => Promise<unknown>;
  readonly log: Logger;
  readonly newId?: () => string;
}

/**
 * Anyone who can reach the port can be refused, as often as they like: one
 * record per refusal would let them fill the log. Refusals are counted per
 * source address and reason over an interval, in at most `maxAggregates`
 * aggregates plus one catch-all, and written when the interval ends (or on
 * close). Every refusal is in some count; none is dropped.
 */
export class RefusalAggregator {
  private readonly opts: RefusalAggregatorOptions;
  private readonly aggregates = new Map<string, RefusalAggregate>();
  private overflow: RefusalAggregate | undefined;
  private windowStart: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(opts: RefusalAggregatorOptions) {
    this.opts = opts;
  }

  add(r: Refusal): void {
    const now = this.opts.now();
    if (this.windowStart !== undefined && now >= this.windowEnd()) this.flush(this.windowEnd());
    if (this.windowStart === undefined) this.open(now);
    const key = JSON.stringify([r.remoteAddress, r.reason]);
    let aggregate = this.aggregates.get(key);
    if (!aggregate && this.aggregates.size < this.opts.maxAggregates) {
      aggregate = this.fresh({ ...r, overflow: false });
      this.aggregates.set(key, aggregate);
    }
    aggregate ??= this.overflow ??= this.fresh({
      remoteAddress: null,
      reason: null,
      code: null,
      status: null,
      overflow: true,
    });
    aggregate.count++;
    aggregate.methods[r.httpMethod] = (aggregate.methods[r.httpMethod] ?? 0) + 1;
  }

  /** Writes the interval's aggregates once it has ended; the interval's timer calls it. */
  tick(): Promise<void> {
    const now = this.opts.now();
    if (this.windowStart !== undefined && now >= this.windowEnd()) this.flush(this.windowEnd());
    // A timer may fire a little before the clock says the interval ended.
    else if (this.windowStart !== undefined) this.schedule(now);
    return this.writing;
  }

  /** Writes what is held now, the interval cut short at the current time (shutdown). */
  close(): Promise<void> {
    if (this.windowStart !== undefined) this.flush(Math.min(this.opts.now(), this.windowEnd()));
    return this.writing;
  }

  private windowEnd(): number {
    return (this.windowStart ?? 0) + this.opts.intervalMs;
  }

  private open(now: number): void {
    // Intervals are aligned to the clock, so aggregates of replicas line up.
    this.windowStart = now - (now % this.opts.intervalMs);
    this.schedule(now);
  }

  private schedule(now: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), Math.max(1, this.windowEnd() - now));
    this.timer.unref();
  }

  private fresh(
    fields: Pick<RefusalAggregate, 'remoteAddress' | 'reason' | 'code' | 'status' | 'overflow'>,
  ): RefusalAggregate {
    const { remoteAddress, reason, code, status, overflow } = fields;
    const from = this.windowStart ?? 0;
    // No prototype: a method name is a key here.
    const methods: Record<string, number> = Object.create(null);
    return { from, to: from, remoteAddress, reason, code, status, overflow, count: 0, methods };
  }

  private flush(to: number): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const held = [...this.aggregates.values(), ...(this.overflow ? [this.overflow] : [])];
    this.aggregates.clear();
    this.overflow = undefined;
    this.windowStart = undefined;
    const newId = this.opts.newId ?? randomUUID;
    const items = held.map((a) => refusalsRecord({ ...a, to }, newId()));
    this.writing = this.writing.then(() => this.write(items, held));
  }

  private async write(items: AppendItem[], held: RefusalAggregate[]): Promise<void> {
    const results = await Promise.allSettled(items.map((item) => this.opts.write(item)));
    const lost = held.filter((_, i) => results[i]!.status === 'rejected');
    if (lost.length === 0) return;
    // The log could not take them: the counts are kept here instead, so none vanishes unseen.
    this.opts.log.error('audit of refused requests failed', {
      err: String((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason),
      aggregates: lost,
    });
  }
}

/** The refusals of one source for one reason over an interval (or the catch-all past the bound). */
export function refusalsRecord(a: RefusalAggregate, id: string): AppendItem {
  return item({
    v: 1,
    type: 'refusals',
    id,
    time: a.to,
    from: a.from,
    to: a.to,
    remoteAddress: a.remoteAddress === null ? null : a.remoteAddress.toWellFormed(),
    reason: a.reason,
    code: a.code,
    status: a.status,
    count: a.count,
    methods: a.methods,
    overflow: a.overflow,
  });
}
