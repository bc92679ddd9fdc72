import { randomUUID } from 'node:crypto';
import type { Logger } from '../observability/log.ts';
import type { AppendItem } from './store.ts';

/** What every aggregate holds: where its interval began, whether it is the catch-all, how many it counted. */
export interface IntervalAggregate {
  readonly from: number;
  readonly overflow: boolean;
  count: number;
}

export interface IntervalCountsOptions<E, A extends IntervalAggregate> {
  readonly intervalMs: number;
  /** Distinct aggregates per interval; events past it go to one catch-all. */
  readonly maxAggregates: number;
  readonly now: () => number;
  readonly write: (item: AppendItem) => Promise<unknown>;
  readonly log: Logger;
  readonly newId?: () => string;
  /** The aggregate an event is counted in. */
  readonly keyOf: (event: E) => string;
  /** A new aggregate for `event`'s key, or the catch-all (no event) once the bound is reached. */
  readonly fresh: (from: number, event: E | undefined) => A;
  /** What the event adds to its aggregate beyond the count, which is kept here. */
  readonly add: (aggregate: A, event: E) => void;
  /** The record of an aggregate whose interval ended at `to`. */
  readonly record: (aggregate: A, to: number, id: string) => AppendItem;
  /** Logged, with the aggregates, when the log cannot take them. */
  readonly lostMessage: string;
}

/**
 * Events a party outside the gateway decides the rate of (a refused request,
 * a sandboxed upstream's connection): one record each would let that party
 * fill the log. They are counted per key over an interval aligned to the
 * clock, in at most `maxAggregates` aggregates plus one catch-all, and written
 * when the interval ends (or on close). Every event is in some count; none is
 * dropped.
 */
export class IntervalCounts<E, A extends IntervalAggregate> {
  private readonly opts: IntervalCountsOptions<E, A>;
  private readonly aggregates = new Map<string, A>();
  private overflow: A | undefined;
  private windowStart: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(opts: IntervalCountsOptions<E, A>) {
    this.opts = opts;
  }

  add(event: E): void {
    const now = this.opts.now();
    if (this.windowStart !== undefined && now >= this.windowEnd()) this.flush(this.windowEnd());
    if (this.windowStart === undefined) this.open(now);
    const from = this.windowStart ?? now;
    const key = this.opts.keyOf(event);
    let aggregate = this.aggregates.get(key);
    if (!aggregate && this.aggregates.size < this.opts.maxAggregates) {
      aggregate = this.opts.fresh(from, event);
      this.aggregates.set(key, aggregate);
    }
    aggregate ??= this.overflow ??= this.opts.fresh(from, undefined);
    aggregate.count++;
    this.opts.add(aggregate, event);
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

  private flush(to: number): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const held = [...this.aggregates.values(), ...(this.overflow ? [this.overflow] : [])];
    this.aggregates.clear();
    this.overflow = undefined;
    this.windowStart = undefined;
    const newId = this.opts.newId ?? randomUUID;
    const items = held.map((a) => this.opts.record(a, to, newId()));
    this.writing = this.writing.then(() => this.write(items, held, to));
  }

  private async write(items: AppendItem[], held: A[], to: number): Promise<void> {
    const results = await Promise.allSettled(items.map((item) => this.opts.write(item)));
    const lost = held.filter((_, i) => results[i]!.status === 'rejected');
    if (lost.length === 0) return;
    // The log could not take them: the counts are kept here instead, so none vanishes unseen.
    this.opts.log.error(this.opts.lostMessage, {
      err: String((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason),
      aggregates: lost.map((a) => ({ ...a, to })),
    });
  }
}
