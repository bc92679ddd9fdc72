import type { Logger } from '../observability/log.ts';
import { IntervalCounts } from './interval-counts.ts';
import { item } from './records.ts';
import type { AppendItem } from './store.ts';

/** One connection a sandboxed upstream asked its egress proxy for, and what the proxy decided. */
export interface EgressAttempt {
  readonly upstream: string;
  readonly host: string;
  readonly port: number;
  readonly method: string;
  readonly allowed: boolean;
}

/** The attempts of one upstream at one host, port and method over an interval; the catch-all names none. */
export interface EgressAggregate {
  readonly from: number;
  readonly to: number;
  readonly upstream: string | null;
  readonly host: string | null;
  readonly port: number | null;
  readonly method: string | null;
  count: number;
  allowed: number;
  refused: number;
  /** Set on the catch-all: attempts past the bound of aggregates. */
  readonly overflow: boolean;
}

export interface EgressAggregatorOptions {
  readonly intervalMs: number;
  readonly maxAggregates: number;
  readonly now: () => number;
  readonly write: (item: AppendItem) => Promise<unknown>;
  readonly log: Logger;
  readonly newId?: () => string;
}

/** Names from the sandbox are the upstream's to choose: bounded, and well-formed before they are hashed. */
const MAX_HOST = 253;
const clean = (host: string): string => host.slice(0, MAX_HOST).toWellFormed();

/**
 * Where sandboxed upstreams tried to connect, in the audit log: counted per
 * upstream, host, port and method over an interval (see `IntervalCounts`),
 * allowed and refused apart.
 */
export class EgressAggregator {
  private readonly counts: IntervalCounts<EgressAttempt, EgressAggregate>;

  constructor(opts: EgressAggregatorOptions) {
    this.counts = new IntervalCounts<EgressAttempt, EgressAggregate>({
      ...opts,
      keyOf: (a) => JSON.stringify([a.upstream, clean(a.host), a.port, a.method]),
      fresh: (from, a) => ({
        from,
        to: from,
        upstream: a?.upstream ?? null,
        host: a ? clean(a.host) : null,
        port: a?.port ?? null,
        method: a?.method ?? null,
        count: 0,
        allowed: 0,
        refused: 0,
        overflow: a === undefined,
      }),
      add: (aggregate, a) => {
        if (a.allowed) aggregate.allowed++;
        else aggregate.refused++;
      },
      record: (aggregate, to, id) => egressRecord({ ...aggregate, to }, id),
      lostMessage: 'audit of sandbox egress failed',
    });
  }

  add(attempt: EgressAttempt): void {
    this.counts.add(attempt);
  }

  /** Writes the interval's aggregates once it has ended; the interval's timer calls it. */
  tick(): Promise<void> {
    return this.counts.tick();
  }

  /** Writes what is held now (shutdown). */
  close(): Promise<void> {
    return this.counts.close();
  }
}

/** The record (`type: egress`) of one aggregate. */
export function egressRecord(a: EgressAggregate, id: string): AppendItem {
  return item({
    v: 1,
    type: 'egress',
    id,
    time: a.to,
    from: a.from,
    to: a.to,
    upstream: a.upstream,
    host: a.host,
    port: a.port,
    method: a.method,
    count: a.count,
    allowed: a.allowed,
    refused: a.refused,
    overflow: a.overflow,
  });
}
