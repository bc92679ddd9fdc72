import { randomUUID } from 'node:crypto';
import type { Logger } from '../observability/log.ts';
import type { AppendItem } from './store.ts';

/** What every aggregate holds: where its interval began, whether it is the catch-all, how many it counted. */
export interface IntervalAggregate {
  readonly from: number;
  readonly overflow: boolean;
  count: number;
}

/** What every kind of counts is configured and wired with. */
export interface CountsSettings {
  readonly intervalMs: number;
  /** Distinct aggregates per group per interval; a group's events past it go to its catch-all. */
  readonly maxAggregates: number;
  readonly now: () => number;
  readonly write: (item: AppendItem) => Promise<unknown>;
  readonly log: Logger;
  readonly newId?: () => string;
}

export interface IntervalCountsOptions<E, A extends IntervalAggregate> extends CountsSettings {
  /** The aggregate an event is counted in. */
  readonly keyOf: (event: E) => string;
  /**
   * The group whose bound an event's aggregate counts against, and whose
   * catch-all takes it past the bound (one group when left out): so one
   * party's many keys cannot push another's events out of named aggregates.
   */
  readonly groupOf?: (event: E) => string;
  /** A new aggregate for `event`'s key, or (`overflow`) its group's catch-all once the bound is reached. */
  readonly fresh: (from: number, event: E, overflow: boolean) => A;
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
  /** Named aggregates per group this interval, and each group's catch-all. */
  private readonly named = new Map<string, number>();
  private readonly overflow = new Map<string, A>();
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
    const aggregate = this.aggregates.get(this.opts.keyOf(event)) ?? this.place(from, event);
    aggregate.count++;
    this.opts.add(aggregate, event);
  }

  /** A new named aggregate for the event's key while its group is under the bound, else the group's catch-all. */
  private place(from: number, event: E): A {
    const group = this.opts.groupOf?.(event) ?? '';
    const named = this.named.get(group) ?? 0;
    if (named < this.opts.maxAggregates) {
      const aggregate = this.opts.fresh(from, event, false);
      this.aggregates.set(this.opts.keyOf(event), aggregate);
      this.named.set(group, named + 1);
      return aggregate;
    }
    let overflow = this.overflow.get(group);
    if (!overflow) {
      overflow = this.opts.fresh(from, event, true);
      this.overflow.set(group, overflow);
    }
    return overflow;
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
    const held = [...this.aggregates.values(), ...this.overflow.values()];
    this.aggregates.clear();
    this.named.clear();
    this.overflow.clear();
    this.windowStart = undefined;
    this.writing = this.writing.then(() => this.write(held, to));
  }

  private async write(held: A[], to: number): Promise<void> {
    const newId = this.opts.newId ?? randomUUID;
    // A record that cannot be made is failed like one the log refused: its counts still reach the error log.
    const results = await Promise.allSettled(
      held.map(async (a) => this.opts.write(this.opts.record(a, to, newId()))),
    );
    const lost = held.filter((_, i) => results[i]!.status === 'rejected');
    if (lost.length === 0) return;
    // The log could not take them: the counts are kept here instead, so none vanishes unseen.
    this.opts.log.error(this.opts.lostMessage, {
      err: String((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason),
      aggregates: lost.map((a) => ({ ...a, to })),
    });
  }
}
