import { confirmWithUser } from '../../approval/confirm.ts';
import { holdForApproval } from '../../approval/gate.ts';
import { confirmationRecord } from '../../approval/records.ts';
import type { ApprovalService, Journal } from '../../approval/service.ts';
import type { HeldCalls } from '../../approval/wakeups.ts';
import { canonicalize } from '../../audit/jcs.ts';
import { sha256hex } from '../../audit/records.ts';
import { Denial } from '../../errors.ts';
import { isObject } from '../../jsonrpc.ts';
import type { CallInput } from '../../policy/call-input.ts';
import { authorizeCall, type CallQuery, type Honoured, refusalOf } from '../../policy/decide.ts';
import type { PolicyService } from '../../policy/service.ts';
import { gatewayQuery } from '../call-query.ts';
import type { CallContext, Decision } from '../context.ts';
import type { Stage } from '../runner.ts';

export interface ApprovalStageDeps {
  readonly approvals: ApprovalService;
  readonly held: HeldCalls;
  readonly policy: PolicyService;
  readonly holdMs: number;
  readonly keepAliveMs: number;
  /** Obligations later stages honour: what the approved call's second decision may still carry. */
  readonly honouredLater: Honoured;
  readonly now: () => number;
  /** Where a user's confirmation is recorded (the audit log); the call waits until it is durable. */
  readonly journal: Journal;
  /** Nothing, or a wait until the policy set the call is decided again by is in the log (`AuditService.policySetsSettled`). */
  readonly policySetsSettled: () => Promise<void> | undefined;
}

/**
 * A call whose decision carries `approval` waits here, after its decision is
 * durable and before anything is forwarded, until an approval for exactly it
 * (principal, tool, argument hash) is granted and used. Then it is decided
 * again with the approval, as every call is its own authorization event.
 * A call with no such obligation passes at the cost of one array lookup.
 */
export function approvalStage(deps: ApprovalStageDeps): Stage {
  return {
    name: 'approval',
    async run(ctx) {
      const obligations = ctx.decision?.obligations;
      if (!obligations || obligations.length === 0) return;
      const call = ctx.callInput;
      if (call?.target.kind !== 'tool') throw new Error('approval without a tool call');
      if (obligations.includes('confirm')) await confirm(deps, ctx, call);
      if (!obligations.includes('approval')) return;
      ctx.held = true;
      const a = await holdForApproval(deps.approvals, deps.held, toApprove(ctx, call), {
        signal: ctx.signal,
        holdMs: deps.holdMs,
        keepAliveMs: deps.keepAliveMs,
        keepAlive: (id, waited) => keepAlive(ctx, id, waited),
        now: deps.now,
        beforeUse: () => decideApproved(deps, ctx, call),
      });
      ctx.approvalId = a.id;
    },
  };
}

/** The user confirms through elicitation on the call's own stream; recorded before the call goes on. */
async function confirm(deps: ApprovalStageDeps, ctx: CallContext, call: CallInput): Promise<void> {
  const subject = toApprove(ctx, call);
  await confirmWithUser(
    {
      tool: subject.tool,
      argsHash: subject.argsHash,
      reason: call.reason,
      clientCanElicit: isObject(ctx.session.client.capabilities.elicitation),
    },
    (request, signal) => ctx.sink.request(request, signal),
    ctx.signal,
  );
  await deps.journal(confirmationRecord(subject, ctx.decisionIndex ?? null, deps.now()));
}

function toApprove(ctx: CallContext, call: CallInput) {
  const p = ctx.principal;
  return {
    callId: ctx.callId,
    session: ctx.session.key,
    principal: p.id,
    ...(p.user ? { user: p.user } : {}),
    principalLabel: [p.user, p.workload].filter(Boolean).join(' via ') || p.id,
    tool: call.target.kind === 'tool' ? call.target.tool.name : '',
    arguments: call.args,
    argsHash: sha256hex(canonicalize(call.args)),
    reason: call.reason,
    required: ctx.decision?.approvers ?? 1,
    decisionIndex: ctx.decisionIndex ?? null,
  };
}

/**
 * The call decided again, now with its approval granted, by the set live now
 * (which the record names, once that set is in the log); throws the refusal
 * when that decision does not allow it.
 */
async function decideApproved(
  deps: ApprovalStageDeps,
  ctx: CallContext,
  call: CallInput,
): Promise<Record<string, unknown>> {
  const target =
    call.target.kind === 'tool' ? { kind: 'tool' as const, name: call.target.tool.name } : call.target;
  const query: CallQuery = {
    ...gatewayQuery(deps.policy, ctx),
    target,
    arguments: call.args,
    reason: call.reason,
    approval: { granted: true, breakGlass: false },
  };
  const outcome = authorizeCall(deps.policy, query, call);
  if (outcome.kind === 'decision') {
    const { failure: _, ...decision } = outcome.decision;
    ctx.decision = decision;
  }
  const refusal = refusalOf(deps.policy, query, outcome, deps.honouredLater);
  if (refusal) throw refusal;
  const redecision = summary(ctx.decision);
  try {
    await deps.policySetsSettled();
  } catch (err) {
    // As audit-decision: a decision naming a set the log does not hold is not made.
    throw new Denial('ERR_AUDIT_UNAVAILABLE', `policy set not recorded: ${String(err)}`, { cause: err });
  }
  return { redecision };
}

const summary = (d: Decision | undefined) =>
  d
    ? {
        effect: d.effect,
        determiningPolicies: d.determiningPolicies,
        obligations: d.obligations,
        policySetHash: d.policySetHash,
      }
    : null;

/** Progress on the open request when the client asked for it; an SSE comment otherwise. */
function keepAlive(ctx: CallContext, approvalId: string, waitedMs: number): void {
  const meta = isObject(ctx.request.params?._meta) ? ctx.request.params._meta : undefined;
  const token = meta?.progressToken;
  if (typeof token === 'string' || typeof token === 'number') {
    ctx.sink.notify({
      jsonrpc: '2.0',
      method: 'notifications/progress',
      params: {
        progressToken: token,
        progress: Math.max(1, waitedMs),
        message: `Waiting for approval ${approvalId}`,
      },
    });
    return;
  }
  ctx.sink.keepAlive?.();
}
