import { type CountsSettings, IntervalCounts } from './interval-counts.ts';
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

/** `maxAggregates`: distinct (source, reason) aggregates per interval; refusals past it go to one catch-all. */
export type RefusalAggregatorOptions = CountsSettings;

/**
 * Anyone who can reach the port can be refused, as often as they like: one
 * record per refusal would let them fill the log. Refusals are counted per
 * source address and reason over an interval (see `IntervalCounts`).
 */
export class RefusalAggregator extends IntervalCounts<Refusal, RefusalAggregate> {
  constructor(opts: RefusalAggregatorOptions) {
    super({
      ...opts,
      keyOf: (r) => JSON.stringify([r.remoteAddress, r.reason]),
      fresh: (from, r, overflow) => ({
        from,
        to: from,
        remoteAddress: overflow ? null : r.remoteAddress,
        reason: overflow ? null : r.reason,
        code: overflow ? null : r.code,
        status: overflow ? null : r.status,
        overflow,
        count: 0,
        // No prototype: a method name is a key here.
        methods: Object.create(null) as Record<string, number>,
      }),
      add: (a, r) => {
        a.methods[r.httpMethod] = (a.methods[r.httpMethod] ?? 0) + 1;
      },
      record: (a, to, id) => refusalsRecord({ ...a, to }, id),
      lostMessage: 'audit of refused requests failed',
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
