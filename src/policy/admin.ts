import type { Denial } from '../errors.ts';
import type { Principal } from '../identity/principal.ts';
import { obligationUnmet, policyDenied, policyEngineFailed, policyInvalid } from './denials.ts';
import type { EntityJson } from './engine/cedar.ts';
import type { EngineDecision } from './engine/engine.ts';
import type { NetworkFacts } from './facts/network.ts';
import { type CedarRequest, networkContext, principalEntity, timeContext } from './facts/request.ts';
import { type AdminAction, APPROVAL_QUEUE, APPROVER_ROLE } from './model/cedar-schema.ts';
import type { PolicyService } from './service.ts';

/** Who acts on the admin listener: a verified principal, or the approver a signed callback names. */
export type AdminCaller =
  | { readonly kind: 'principal'; readonly principal: Principal }
  | { readonly kind: 'callback'; readonly source: string; readonly approver: string };

/** The approval an action is on, as policies see it (`resource.tool`, `resource.principal`, `resource.required`). */
export interface ApprovalFacts {
  readonly id: string;
  readonly tool: string;
  /** The principal id of the caller whose call is held. */
  readonly principal: string;
  readonly required: number;
}

export interface AdminQuery {
  readonly caller: AdminCaller;
  /** Whether `approvals.approvers` names the caller: then it is in `Role::"approver"`. */
  readonly approver: boolean;
  readonly action: AdminAction;
  /** The approval acted on; `approvals/list` acts on the queue and names none. */
  readonly approval?: ApprovalFacts;
  /** The approver's comment, as `context.reason`. */
  readonly comment?: string;
  readonly network: NetworkFacts;
  readonly now: number;
}

/**
 * The policy decision for one admin action, on the same engine and policy set
 * as every call: deny by default, so a set with no permit for these actions
 * refuses the admin API.
 */
export function decideAdminAction(policy: PolicyService, q: AdminQuery): EngineDecision {
  return policy.decideRequest(adminRequest(q, policy.cfg.utcOffsetMinutes));
}

/** The error an admin action's decision is answered with; undefined for an allow (which may carry no obligation). */
export function adminRefusal(d: EngineDecision): Denial | undefined {
  if (d.failure === 'engine') return policyEngineFailed(d);
  if (d.failure === 'invalid') return policyInvalid(d);
  if (d.effect === 'deny') return policyDenied(d);
  // Nothing on the admin listener honours an obligation: an allow that carries one fails closed.
  if (d.obligations.length > 0) return obligationUnmet(d);
  return undefined;
}

function adminRequest(q: AdminQuery, utcOffsetMinutes: number): CedarRequest {
  const caller = callerEntity(q.caller, q.approver);
  const resource = q.approval ? approvalEntity(q.approval) : queueEntity();
  return {
    principal: caller.uid as CedarRequest['principal'],
    action: { type: 'Action', id: q.action },
    resource: resource.uid as CedarRequest['resource'],
    context: {
      method: q.action,
      reason: q.comment ?? '',
      // No risk score for admin actions yet: the caller is a named approver.
      risk: 0,
      time: timeContext(q.now, utcOffsetMinutes),
      network: networkContext(q.network),
      session: { callsLastMinute: 0, toolsUsed: [], sensitiveRead: false },
      approval: { granted: false, breakGlass: false },
      request: { signed: false },
      detected: { secrets: [], pii: [] },
      input: {},
    },
    entities: [caller, resource, { uid: { type: 'Action', id: q.action }, attrs: {}, parents: [] }],
  };
}

function callerEntity(caller: AdminCaller, approver: boolean): EntityJson {
  const roles = approver ? [APPROVER_ROLE] : [];
  if (caller.kind === 'principal') {
    const entity = principalEntity(caller.principal);
    return { ...entity, parents: [...entity.parents, ...roles] };
  }
  // Only its id is known: the source vouches for the user name, nothing else.
  return {
    uid: { type: 'Caller', id: caller.approver },
    attrs: {
      id: caller.approver,
      authMethod: 'webhook',
      authenticated: true,
      workload: '',
      user: '',
      issuer: `webhook:${caller.source}`,
      scopes: [],
      reason: '',
    },
    parents: roles,
    tags: {},
  };
}

const approvalEntity = (a: ApprovalFacts): EntityJson => ({
  uid: { type: 'Approval', id: a.id },
  attrs: { tool: a.tool, principal: a.principal, required: a.required },
  parents: [],
});

const queueEntity = (): EntityJson => ({ uid: { ...APPROVAL_QUEUE }, attrs: {}, parents: [] });
