import { unknownTarget } from '../../errors.ts';
import { callInputs, type ListenInput, listenInputs } from '../../policy/call-input.ts';
import {
  callerHistoryFull,
  obligationUnmet,
  policyDenied,
  policyEngineFailed,
  policyInvalid,
  sessionHistoryFull,
} from '../../policy/denials.ts';
import { networkOf } from '../../policy/facts/network.ts';
import type { Target } from '../../policy/facts/request.ts';
import { MAX_TOOLS_PER_PRINCIPAL } from '../../policy/facts/session-facts.ts';
import { type PolicyService, targetName } from '../../policy/service.ts';
import type { CallContext, Decision } from '../context.ts';
import type { Stage } from '../runner.ts';

/** Protocol plumbing the gateway answers itself; lists are filtered item by item instead. */
const PROTOCOL: Decision = {
  effect: 'allow',
  determiningPolicies: ['builtin:protocol'],
  policySetHash: '',
  obligations: [],
  errors: [],
};

/**
 * The Cedar decision for every call, recorded in `ctx.decision`. Deny by
 * default; an engine error or an obligation no stage can honour yet denies too.
 */
export function authorizeStage(policy: PolicyService): Stage {
  return {
    name: 'authorize',
    run(ctx: CallContext) {
      const route = ctx.route;
      if (!route) throw new Error('authorize without a route');
      if (route.kind === 'gateway') {
        ctx.decision = { ...PROTOCOL, policySetHash: policy.live.source.hash };
        const listen = listenInputs.get(ctx);
        if (listen && listen.resources.length > 0) ctx.decision = authorizeListen(policy, ctx, listen);
        return;
      }
      const call = callInputs.get(ctx);
      if (!call) throw new Error('authorize without validated input');
      const now = policy.now();
      const name = targetName(call.target);
      admitOrDeny(policy, ctx, now);
      const session = policy.facts.snapshot(ctx.principal.id, name, now);
      if (call.target.kind === 'tool' && session.toolsFull && !session.toolsUsed.includes(name)) {
        ctx.decision = builtinDenial(policy, 'builtin:session-history-full');
        throw sessionHistoryFull(name, MAX_TOOLS_PER_PRINCIPAL);
      }
      const facts = {
        ...policy.baseFacts(
          ctx.principal,
          ctx.request.method,
          call.target,
          session,
          now,
          networkOf(ctx.session),
        ),
        input: call.input,
        reason: call.reason,
      };
      const target = call.target;
      decideOrDeny(
        policy,
        ctx,
        facts,
        target.kind === 'server' ? undefined : () => unknownTarget(kindOf(target), name),
      );
      policy.facts.record(ctx.principal.id, name, now, {
        sensitive: policy.isSensitive(call.target, call.args),
        tool: call.target.kind === 'tool',
      });
    },
  };
}

/** A caller the history cannot take (it is full of callers still remembered) is refused, never forgotten. */
function admitOrDeny(policy: PolicyService, ctx: CallContext, now: number): void {
  if (policy.facts.admits(ctx.principal.id, now)) return;
  ctx.decision = builtinDenial(policy, 'builtin:caller-history-full');
  throw callerHistoryFull(ctx.principal.id, policy.cfg.session.maxPrincipals);
}

const builtinDenial = (policy: PolicyService, id: string): Decision => ({
  effect: 'deny',
  determiningPolicies: [id],
  policySetHash: policy.live.source.hash,
  obligations: [],
  errors: [],
});

const kindOf = (t: Target): string => (t.kind === 'server' ? 'method' : t.kind);

/**
 * A listen that follows resources is as many subscriptions: each is decided as
 * `resources/subscribe` of that resource, and one denial denies the listen.
 */
function authorizeListen(policy: PolicyService, ctx: CallContext, listen: ListenInput): Decision {
  const now = policy.now();
  admitOrDeny(policy, ctx, now);
  const determining = new Set<string>();
  const errors = new Set<string>();
  for (const target of listen.resources) {
    const session = policy.facts.snapshot(ctx.principal.id, targetName(target), now);
    const facts = {
      ...policy.baseFacts(ctx.principal, 'resources/subscribe', target, session, now, networkOf(ctx.session)),
      input: {},
      reason: listen.reason,
    };
    const decision = decideOrDeny(policy, ctx, facts, () => unknownTarget('resource', target.uri));
    for (const id of decision.determiningPolicies) determining.add(id);
    for (const e of decision.errors) errors.add(e);
  }
  for (const target of listen.resources) {
    const sensitive = policy.isSensitive(target, {});
    policy.facts.record(ctx.principal.id, targetName(target), now, { sensitive, tool: false });
  }
  return {
    effect: 'allow',
    determiningPolicies: [...determining],
    policySetHash: policy.live.source.hash,
    obligations: [],
    errors: [...errors],
  };
}

/**
 * Decides, keeps the decision on the call for the audit, and throws the denial
 * the caller gets: `hidden` when the caller may not even see the target.
 */
function decideOrDeny(
  policy: PolicyService,
  ctx: CallContext,
  facts: Parameters<PolicyService['decide']>[0],
  hidden: (() => Error) | undefined,
): Decision {
  const { failure, ...decision } = policy.decide(facts, ctx.callId);
  ctx.decision = decision;
  if (failure === 'engine') throw policyEngineFailed(decision);
  if (failure === 'invalid') throw policyInvalid(decision);
  if (decision.effect === 'deny') {
    if (hidden && !policy.mayUse(facts)) throw hidden();
    throw policyDenied(decision);
  }
  if (decision.obligations.length > 0) throw obligationUnmet(decision);
  return decision;
}
