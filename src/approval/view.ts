import type { Approval } from './types.ts';

/** An approval as approvers list it: what is asked, by whom, and how far it got; never the argument values. */
export const approvalSummary = (a: Approval) => ({
  id: a.id,
  status: a.status,
  tool: a.tool,
  principal: a.principal,
  caller: a.principalLabel,
  reason: a.reason,
  argsHash: a.argsHash,
  grants: a.grants.length,
  required: a.required,
  createdAt: new Date(a.createdAt).toISOString(),
  expiresAt: new Date(a.expiresAt).toISOString(),
});

/** One approval in full for an approver about to decide: the arguments it releases, and every act on it. */
export const approvalDetail = (a: Approval) => ({
  ...approvalSummary(a),
  arguments: a.arguments,
  grants: a.grants,
  denial: a.denial ?? null,
});
