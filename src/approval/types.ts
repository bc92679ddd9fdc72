/** Where an approval stands; only `granted` releases a call, once (then `consumed`). */
export type ApprovalStatus = 'pending' | 'granted' | 'denied' | 'expired' | 'consumed' | 'abandoned';

/** How an approver's word reached the gateway. */
export type ApprovalChannel = 'cli' | 'admin-api' | 'webhook' | 'elicitation';

/** One approver's grant or denial. */
export interface ApproverAct {
  /** The approver's identity: a principal id, `operator:NAME` for the CLI, `webhook:SOURCE:USER` for a callback. */
  readonly approver: string;
  /** The approver's user (`sub`) when it is a verified caller: the same person through another workload is still the caller. */
  readonly user?: string;
  readonly channel: ApprovalChannel;
  readonly comment: string;
  readonly at: number;
}

/** A held call waiting for (or released by) approvers. Bound to the exact call: principal, tool, argument hash. */
export interface Approval {
  readonly id: string;
  readonly status: ApprovalStatus;
  /** The caller's principal id; never one of its approvers. */
  readonly principal: string;
  /** The caller's user (`sub`), if any: an operator of that name cannot approve it either. */
  readonly user?: string;
  /** The caller as approvers see it (workload, user), for display only. */
  readonly principalLabel: string;
  /** The tool's exposed name (`upstream__tool`). */
  readonly tool: string;
  /** SHA-256 (hex) of the RFC 8785 canonical arguments. */
  readonly argsHash: string;
  /** The arguments, so an approver sees what is approved (kept in the state store, not the audit log). */
  readonly arguments: Readonly<Record<string, unknown>>;
  readonly reason: string;
  /** Distinct approvers needed (the policy's `@approvals("N")`, at least 1). */
  readonly required: number;
  /** The call that asked, and its decision record's index in the audit log. */
  readonly callId: string;
  readonly decisionIndex: number | null;
  readonly session: string;
  /** The gateway process that created it: closing that process abandons it. */
  readonly gateway: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly grants: readonly ApproverAct[];
  readonly denial?: ApproverAct;
  /** The call that used it. */
  readonly consumedBy?: string;
}

/** What webhooks announce. */
export type ApprovalEventType =
  | 'approval.requested'
  | 'approval.granted'
  | 'approval.denied'
  | 'approval.expired'
  | 'breakglass.requested'
  | 'breakglass.opened'
  | 'breakglass.used'
  | 'breakglass.closed'
  | 'tool.quarantined'
  | 'server.refused';

export interface ApprovalEvent {
  readonly type: ApprovalEventType;
  /** Milliseconds since the epoch. */
  readonly time: number;
  /** The approval or break-glass id. */
  readonly id: string;
  /** A short human summary ("alice wants fs__write_file", …). */
  readonly summary: string;
  /** Fields for machines: tool, principal, argsHash, expiresAt, required, approve/deny commands; never argument values. */
  readonly data: Readonly<Record<string, unknown>>;
}
