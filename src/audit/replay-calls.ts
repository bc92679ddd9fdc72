import { isObject } from '../jsonrpc.ts';
import type { Tampering } from './replay-scan.ts';

/** One entry of a replayed call: the record as signed, and whether it was proven to be in the log. */
export interface ReplayEntry {
  readonly index: number;
  /** The record's type: `decision`, `outcome`, and any other record naming the call (`approval.granted`, …). */
  readonly type: string;
  readonly record: Readonly<Record<string, unknown>>;
  /** Included in the checkpoint, and its stored columns say what it says. */
  readonly verified: boolean;
  readonly problems: readonly Tampering[];
}

export interface CallDecision {
  /** `allow`, `deny`, or `none` when no policy decided. */
  readonly effect: string;
  readonly determiningPolicies: readonly string[];
  readonly obligations: readonly string[];
  readonly policySetHash: string | null;
}

export interface CallOutcome {
  readonly status: string;
  readonly error: string | null;
  readonly rpcError: number | null;
  /** `answered`, `no-answer` (it may have acted), or null when nothing was forwarded. */
  readonly upstream: string | null;
  readonly latencyMs: number | null;
}

export interface CallArguments {
  /** As the decision record stores them: keyed hashes, clear values, or `{ blob, bytes }`. */
  readonly stored: unknown;
  readonly clear: boolean;
  readonly hash: string | null;
}

/** A call as its records tell it, every record naming the call under it in log order. */
export interface ReplayCall {
  readonly callId: string;
  readonly time: number | null;
  readonly method: string | null;
  readonly tool: string | null;
  readonly principal: string | null;
  readonly session: string | null;
  readonly decision: CallDecision | null;
  readonly approvalId: string | null;
  readonly breakGlassId: string | null;
  readonly args: CallArguments | null;
  readonly outcome: CallOutcome | null;
  readonly entries: readonly ReplayEntry[];
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [];

/** The first value a record of the call gives for `read`, in log order. */
function first<T>(entries: readonly ReplayEntry[], read: (r: Readonly<Record<string, unknown>>) => T | null) {
  for (const e of entries) {
    const v = read(e.record);
    if (v !== null) return v;
  }
  return null;
}

const principalOf = (r: Readonly<Record<string, unknown>>): string | null =>
  isObject(r.principal) ? str(r.principal.id) : str(r.principal);

function decisionOf(r: Readonly<Record<string, unknown>>): CallDecision {
  const d = r.decision;
  if (!isObject(d))
    return { effect: str(d) ?? 'none', determiningPolicies: [], obligations: [], policySetHash: null };
  return {
    effect: str(d.effect) ?? 'none',
    determiningPolicies: strings(d.determiningPolicies),
    obligations: strings(d.obligations),
    policySetHash: str(d.policySetHash),
  };
}

const outcomeOf = (r: Readonly<Record<string, unknown>>): CallOutcome => ({
  status: str(r.status) ?? 'unknown',
  error: str(r.error),
  rpcError: num(r.rpcError),
  upstream: str(r.upstream),
  latencyMs: num(r.latencyMs),
});

/** Groups a call's entries (already in log order) into what a reader wants to see first. */
export function callOf(callId: string, entries: readonly ReplayEntry[]): ReplayCall {
  const decision = entries.find((e) => e.type === 'decision')?.record;
  const outcome = entries.find((e) => e.type === 'outcome')?.record;
  return {
    callId,
    time: first(entries, (r) => num(r.time)),
    method: first(entries, (r) => str(r.method)),
    tool: first(entries, (r) => str(r.tool)),
    principal: first(entries, principalOf),
    session: first(entries, (r) => str(r.session)),
    decision: decision ? decisionOf(decision) : null,
    approvalId: first(entries, (r) => str(r.approvalId)),
    breakGlassId: first(entries, (r) => str(r.breakGlassId)),
    args: decision
      ? { stored: decision.args ?? null, clear: decision.argsClear === true, hash: str(decision.argsHash) }
      : null,
    outcome: outcome ? outcomeOf(outcome) : null,
    entries,
  };
}
