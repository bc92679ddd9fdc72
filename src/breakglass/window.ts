import type { ApproverAct } from '../approval/types.ts';
import type { StoredRecord } from '../state/records.ts';

/**
 * Where a window stands. Only `open` lets calls through; `refused` is a
 * request closed before it opened; `expired` is a request nobody approved in
 * time or a window past its time.
 */
export type BreakGlassStatus = 'requested' | 'open' | 'closed' | 'expired' | 'refused';

/** Distinct approvers a window needs, none of them the operator who asked for it. */
export const APPROVERS_NEEDED = 2;

/** A break-glass window as the state store keeps it (kind `breakglass`). */
export interface BreakGlassWindow {
  readonly id: string;
  readonly status: BreakGlassStatus;
  /** The scope as `--scope` writes it (see scope.ts), in a stable order. */
  readonly scope: string;
  readonly reason: string;
  /** Who asked for it: `operator:NAME`. */
  readonly openedBy: string;
  readonly approvers: readonly ApproverAct[];
  /** How long it stays open once opened. */
  readonly ttlMs: number;
  readonly requestedAt: number;
  readonly openedAt?: number;
  /** While requested: when the request expires; once open: `openedAt + ttlMs`. */
  readonly expiresAt: number;
  readonly closedBy?: string;
  readonly closedAt?: number;
  /** The closer's comment. */
  readonly comment?: string;
}

/** Still able to change: a request or an open window (either may be past `expiresAt`, not yet recorded). */
export const isLive = (w: BreakGlassWindow): boolean => w.status === 'requested' || w.status === 'open';

/**
 * Why an `open` record is not a window this service could have opened, if it
 * is not: fewer than two distinct approvers besides the requester, or a time
 * longer than any allowed. A record changed behind the service's back is not
 * honoured.
 */
export function openingProblem(w: BreakGlassWindow, maxTtlMs: number): string | undefined {
  const approvers = new Set(w.approvers.map((a) => a.approver));
  approvers.delete(w.openedBy);
  if (approvers.size < APPROVERS_NEEDED) return `${approvers.size} distinct approvers besides the requester`;
  if (w.openedAt === undefined || w.ttlMs > maxTtlMs || w.expiresAt > w.openedAt + w.ttlMs)
    return 'open longer than its ttl allows';
  return undefined;
}

/** The status column is the truth; the body carries the rest. */
export const fromRecord = (rec: StoredRecord): BreakGlassWindow => ({
  ...(rec.body as unknown as BreakGlassWindow),
  status: rec.status as BreakGlassStatus,
});

export function toRecord(w: BreakGlassWindow): Omit<StoredRecord, 'version'> {
  return { kind: 'breakglass', id: w.id, createdAt: w.requestedAt, ...changeOf(w) };
}

export function changeOf(
  w: BreakGlassWindow,
): Pick<StoredRecord, 'status' | 'matchKey' | 'expiresAt' | 'body'> {
  return {
    status: w.status,
    matchKey: '',
    expiresAt: w.expiresAt,
    body: w as unknown as Record<string, unknown>,
  };
}
