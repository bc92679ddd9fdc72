import type { Approval, ApproverAct } from './types.ts';

/** What happened to an approval, as its audit records name it. */
export type ApprovalAuditEvent =
  | 'requested'
  | 'granted'
  | 'denied'
  | 'expired'
  | 'consumed'
  | 'abandoned'
  | 'refused'
  | 'confirmed';

/**
 * An approval's audit record (`type: approval`), linked to the decision
 * record of the call that asked by `decisionIndex`. Arguments appear only as
 * their hash; an approver's comment and identity are recorded as given.
 */
export function approvalRecord(
  a: Approval,
  event: ApprovalAuditEvent,
  time: number,
  extra: { act?: ApproverAct; callId?: string; session?: string; code?: string } = {},
): Record<string, unknown> {
  return {
    v: 1,
    type: 'approval',
    event,
    time,
    // The call this event belongs to: a consumption is the retrying call's.
    callId: extra.callId ?? a.callId,
    session: extra.session ?? a.session,
    tool: a.tool,
    principal: { id: a.principal },
    approvalId: a.id,
    approvalCallId: a.callId,
    decisionIndex: a.decisionIndex,
    argsHash: a.argsHash,
    required: a.required,
    grants: a.grants.length,
    expiresAt: a.expiresAt,
    ...(extra.act
      ? { approver: extra.act.approver, channel: extra.act.channel, comment: extra.act.comment }
      : {}),
    ...(extra.code ? { code: extra.code } : {}),
  };
}

/** A user's confirmation through elicitation (`confirm`): recorded as such, never as an approval. */
export function confirmationRecord(
  call: { callId: string; session: string; principal: string; tool: string; argsHash: string },
  decisionIndex: number | null,
  time: number,
): Record<string, unknown> {
  return {
    v: 1,
    type: 'approval',
    event: 'confirmed',
    time,
    callId: call.callId,
    session: call.session,
    tool: call.tool,
    principal: { id: call.principal },
    decisionIndex,
    argsHash: call.argsHash,
    approver: `user-of:${call.principal}`,
    channel: 'elicitation',
  };
}
