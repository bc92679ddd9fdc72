import type { ApprovalEvent, ApproverAct } from '../approval/types.ts';
import type { BreakGlassWindow } from './window.ts';

/** What happened to a window, as its audit records and alerts name it. */
export type BreakGlassEvent = 'requested' | 'approved' | 'opened' | 'used' | 'closed' | 'expired' | 'refused';

/** Who ends a window that ran out of time. */
export const GATEWAY_ACTOR = 'portcullis';

export interface RecordExtra {
  /** Who acted: an approver's act (approve, close) or just an id (the requester, the gateway). */
  readonly act?: ApproverAct;
  readonly actor?: string;
  /** A use: the call that passed, and its session, tool and caller. */
  readonly call?: {
    readonly callId: string;
    readonly session: string;
    readonly tool: string;
    readonly principal: string;
  };
  /** A use: how many calls passed since the last `used` record (uses are recorded at most once a second). */
  readonly uses?: number;
  /** A refused action: its error code. */
  readonly code?: string;
}

/**
 * A window's audit record (`type: breakglass`): its id is the record's
 * `callId`, except for a use, which names the call that passed (and so sits
 * with that call in `audit replay`).
 */
export function breakGlassRecord(
  w: BreakGlassWindow,
  event: BreakGlassEvent,
  time: number,
  extra: RecordExtra = {},
): Record<string, unknown> {
  const call = extra.call;
  return {
    v: 1,
    type: 'breakglass',
    event,
    time,
    callId: call?.callId ?? w.id,
    session: call?.session ?? '',
    tool: call?.tool ?? '',
    principal: { id: call?.principal ?? extra.act?.approver ?? extra.actor ?? GATEWAY_ACTOR },
    breakGlassId: w.id,
    status: w.status,
    scope: w.scope,
    reason: w.reason,
    openedBy: w.openedBy,
    approvers: w.approvers.map((a) => a.approver),
    ttlMs: w.ttlMs,
    expiresAt: w.expiresAt,
    ...(extra.act
      ? { approver: extra.act.approver, channel: extra.act.channel, comment: extra.act.comment }
      : {}),
    ...(extra.uses !== undefined ? { uses: extra.uses } : {}),
    ...(extra.code ? { code: extra.code } : {}),
  };
}

/** The announcement (webhooks) an event makes, if any: a single approval of two is only logged. */
export function announcementOf(
  w: BreakGlassWindow,
  event: BreakGlassEvent,
  time: number,
  data: Readonly<Record<string, unknown>>,
): ApprovalEvent | undefined {
  const type = TYPES[event];
  if (!type) return undefined;
  return {
    type,
    time,
    id: w.id,
    summary: `break-glass ${event}: ${w.scope} (${w.reason})`,
    data: {
      scope: w.scope,
      reason: w.reason,
      status: w.status,
      openedBy: w.openedBy,
      approvers: w.approvers.map((a) => a.approver),
      expiresAt: w.expiresAt,
      ...(w.status === 'requested' ? { approve: `portcullis breakglass approve ${w.id} --as NAME` } : {}),
      ...(w.status === 'open' ? { close: `portcullis breakglass close ${w.id} --as NAME` } : {}),
      ...data,
    },
  };
}

const TYPES: Partial<Record<BreakGlassEvent, ApprovalEvent['type']>> = {
  requested: 'breakglass.requested',
  opened: 'breakglass.opened',
  used: 'breakglass.used',
  closed: 'breakglass.closed',
  expired: 'breakglass.closed',
};
