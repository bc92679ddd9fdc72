import type { BreakGlass } from '../../breakglass/guard.ts';
import type { ListenInput } from '../../policy/call-input.ts';
import { authorizeCall, type CallQuery, type Honoured, refusalOf } from '../../policy/decide.ts';
import { type PolicyService, targetName } from '../../policy/service.ts';
import { NOTHING_DETECTED } from '../../protect/service.ts';
import { gatewayQuery } from '../call-query.ts';
import type { CallContext, Decision } from '../context.ts';
import type { Stage } from '../runner.ts';
import { breakGlassOverride } from './break-glass.ts';

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
 * default; an engine error or an obligation no later stage honours denies too.
 * The one exception is a call an open break-glass window covers (see
 * break-glass.ts): it is allowed, marked with the window's id.
 */
export function authorizeStage(policy: PolicyService, honoured: Honoured, breakGlass: BreakGlass): Stage {
  return {
    name: 'authorize',
    run(ctx: CallContext) {
      const route = ctx.route;
      if (!route) throw new Error('authorize without a route');
      if (route.kind === 'gateway') {
        ctx.listPolicy = policy.live;
        ctx.decision = { ...PROTOCOL, policySetHash: ctx.listPolicy.source.hash };
        const listen = ctx.listenInput;
        if (listen && listen.resources.length > 0) ctx.decision = authorizeListen(policy, ctx, listen);
        return;
      }
      const call = ctx.callInput;
      if (!call) throw new Error('authorize without validated input');
      const query: CallQuery = {
        ...gatewayQuery(policy, ctx),
        target: call.target.kind === 'tool' ? { kind: 'tool', name: call.target.tool.name } : call.target,
        arguments: call.args,
        reason: call.reason,
      };
      const outcome = authorizeCall(policy, query, call);
      if (outcome.kind === 'decision') {
        const { failure: _, ...decision } = outcome.decision;
        ctx.decision = decision;
      }
      const refusal = refusalOf(policy, query, outcome, honoured);
      if (refusal || ctx.decision?.obligations.length) {
        const glass = breakGlassOverride(breakGlass, ctx, call, outcome, refusal, honoured);
        if (glass) {
          ctx.breakGlassId = glass.windowId;
          ctx.decision = glass.decision;
        } else if (refusal) throw refusal;
      }
      policy.facts.record(ctx.principal.id, targetName(call.target), query.now, {
        sensitive: policy.isSensitive(call.target, call.args),
        tool: call.target.kind === 'tool',
      });
    },
  };
}

/**
 * A listen that follows resources is as many subscriptions: each is decided as
 * `resources/subscribe` of that resource, and one denial denies the listen.
 */
function authorizeListen(policy: PolicyService, ctx: CallContext, listen: ListenInput): Decision {
  const base = { ...gatewayQuery(policy, ctx), method: 'resources/subscribe', arguments: {} };
  const determining = new Set<string>();
  const errors = new Set<string>();
  for (const target of listen.resources) {
    const query: CallQuery = { ...base, target, reason: listen.reason };
    const outcome = authorizeCall(policy, query, { target, input: {}, args: {}, detected: NOTHING_DETECTED });
    if (outcome.kind === 'decision') {
      const { failure: _, ...decision } = outcome.decision;
      ctx.decision = decision;
      for (const id of decision.determiningPolicies) determining.add(id);
      for (const e of decision.errors) errors.add(e);
    }
    const refusal = refusalOf(policy, query, outcome);
    if (refusal) throw refusal;
  }
  for (const target of listen.resources) {
    const sensitive = policy.isSensitive(target, {});
    policy.facts.record(ctx.principal.id, targetName(target), base.now, { sensitive, tool: false });
  }
  return {
    effect: 'allow',
    determiningPolicies: [...determining],
    policySetHash: policy.live.source.hash,
    obligations: [],
    errors: [...errors],
  };
}
