import { isObject } from '../jsonrpc.ts';
import type { EntryMeta } from './store.ts';

/** The stores' column for each field of `EntryMeta`. */
export const COLUMN: Readonly<Record<keyof EntryMeta, string>> = {
  kind: 'kind',
  callId: 'call_id',
  principal: 'principal',
  tool: 'tool',
  decision: 'decision',
  session: 'session',
  time: 'time',
};

type Rec = Record<string, unknown>;
const byEvent = (r: Rec): unknown => r.event;

/**
 * The `decision` column of each kind of record the stores index by call: a
 * decision's effect, an outcome's status; for the life of an approval,
 * break-glass window, tool pin, credential lease or server pin, and for an
 * operator's act (admin) or a policy set (policy-set), its `event` (requested, granted, changed, revoked,
 * …); for an upstream start, its `result`
 * (started, refused, failed).
 */
const DECISION_OF: Readonly<Record<string, (r: Rec) => unknown>> = {
  decision: (r) => (isObject(r.decision) ? r.decision.effect : r.decision),
  outcome: (r) => r.status,
  approval: byEvent,
  breakglass: byEvent,
  'tool-pin': byEvent,
  lease: byEvent,
  'server-pin': byEvent,
  'upstream-start': (r) => r.result,
  admin: byEvent,
  'policy-set': byEvent,
};

/**
 * What the stores keep beside a record, derived from the record alone: the
 * columns are written from it and checked against it, so a column can never
 * say something its signed leaf does not.
 */
export function metaOfRecord(r: Record<string, unknown>): EntryMeta | undefined {
  const time = r.time;
  if (typeof time !== 'number') return undefined;
  const type = String(r.type);
  const decisionOf = Object.hasOwn(DECISION_OF, type) ? DECISION_OF[type] : undefined;
  if (decisionOf) {
    const principal = isObject(r.principal) ? r.principal.id : undefined;
    const decision = decisionOf(r);
    const { callId, tool, session } = r;
    if (
      typeof callId !== 'string' ||
      typeof principal !== 'string' ||
      typeof tool !== 'string' ||
      typeof decision !== 'string' ||
      typeof session !== 'string'
    )
      return undefined;
    return { kind: type as EntryMeta['kind'], callId, principal, tool, decision, session, time };
  }
  if (r.type === 'refusal' || r.type === 'refusals') {
    // One refused request (older logs), or the refusals of one source and reason over an interval.
    const callId = r.type === 'refusal' ? r.callId : r.id;
    if (typeof callId !== 'string') return undefined;
    return {
      kind: 'refusal',
      callId,
      principal: 'unauthenticated',
      tool: '',
      decision: 'deny',
      session: '',
      time,
    };
  }
  if (r.type === 'egress') return egressMeta(r, time);
  return undefined;
}

/**
 * A sandboxed upstream's connections over an interval: the principal column
 * names the upstream (`upstream:NAME`), the decision column the proxy's.
 */
function egressMeta(r: Rec, time: number): EntryMeta | undefined {
  const { id, upstream, allowed } = r;
  if (typeof id !== 'string' || typeof upstream !== 'string' || typeof allowed !== 'boolean')
    return undefined;
  return {
    kind: 'egress',
    callId: id,
    principal: `upstream:${upstream}`,
    tool: '',
    decision: allowed ? 'allow' : 'deny',
    session: '',
    time,
  };
}

/** The meta its signed leaf implies, or undefined when the leaf is not an audit record. */
export function metaOfLeaf(leaf: Buffer): EntryMeta | undefined {
  let record: unknown;
  try {
    record = JSON.parse(leaf.toString('utf8'));
  } catch {
    return undefined;
  }
  return isObject(record) ? metaOfRecord(record) : undefined;
}

export interface ColumnMismatch {
  /** The store's column name. */
  readonly column: string;
  readonly stored: string | number;
  readonly signed: string | number;
}

/** The first stored column that differs from what the signed leaf says. */
export function columnMismatch(stored: EntryMeta, signed: EntryMeta): ColumnMismatch | undefined {
  for (const field of Object.keys(COLUMN) as (keyof EntryMeta)[]) {
    if (stored[field] !== signed[field])
      return { column: COLUMN[field], stored: stored[field], signed: signed[field] };
  }
  return undefined;
}
