import { type CountsSettings, IntervalCounts } from './interval-counts.ts';
import { item } from './records.ts';
import type { AppendItem } from './store.ts';

/** One connection a sandboxed upstream asked its egress proxy for, and what the proxy decided. */
export interface EgressAttempt {
  readonly upstream: string;
  readonly host: string;
  readonly port: number;
  /** How it was asked: a CONNECT tunnel or an absolute-form HTTP request. */
  readonly method: string;
  readonly allowed: boolean;
  /** Set when the target did not parse (refused; host and port are not known). */
  readonly malformed?: boolean;
}

/**
 * The attempts of one upstream at one host, port and method over an interval,
 * allowed or refused; its catch-all (`overflow`) names the upstream and the
 * decision, not the host.
 */
export interface EgressAggregate {
  readonly from: number;
  readonly to: number;
  readonly upstream: string;
  readonly allowed: boolean;
  readonly host: string | null;
  readonly port: number | null;
  readonly method: string | null;
  readonly malformed: boolean;
  /** The host name was longer than a DNS name can be: its last `MAX_HOST` characters are kept. */
  readonly truncated: boolean;
  count: number;
  readonly overflow: boolean;
}

/** `maxAggregates`: named aggregates per upstream and decision per interval. */
export type EgressAggregatorOptions = CountsSettings;

/** A DNS name's longest; the end of a longer one is kept (it holds the domain an allowlist names). */
const MAX_HOST = 253;
const hostOf = (a: EgressAttempt): string | null =>
  a.malformed ? null : a.host.slice(-MAX_HOST).toWellFormed();

/**
 * Where sandboxed upstreams tried to connect, in the audit log: counted per
 * upstream, decision, host, port and method over an interval (see
 * `IntervalCounts`). Each upstream's allowed and refused attempts are bounded
 * apart, so neither one upstream's many refused hosts nor another's can push
 * an allowed connection out of a record that names it.
 */
export class EgressAggregator extends IntervalCounts<EgressAttempt, EgressAggregate> {
  constructor(opts: EgressAggregatorOptions) {
    super({
      ...opts,
      keyOf: (a) => JSON.stringify([a.upstream, a.allowed, hostOf(a), a.port, a.method, !!a.malformed]),
      groupOf: (a) => JSON.stringify([a.upstream, a.allowed]),
      fresh: (from, a, overflow) => ({
        from,
        to: from,
        upstream: a.upstream,
        allowed: a.allowed,
        host: overflow ? null : hostOf(a),
        port: overflow || a.malformed ? null : a.port,
        method: overflow ? null : a.method,
        malformed: !overflow && !!a.malformed,
        truncated: !overflow && !a.malformed && a.host.length > MAX_HOST,
        count: 0,
        overflow,
      }),
      add: () => {},
      record: (aggregate, to, id) => egressRecord({ ...aggregate, to }, id),
      lostMessage: 'audit of sandbox egress failed',
    });
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
    allowed: a.allowed,
    host: a.host,
    port: a.port,
    method: a.method,
    malformed: a.malformed,
    truncated: a.truncated,
    count: a.count,
    overflow: a.overflow,
  });
}
