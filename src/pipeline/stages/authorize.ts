import { unknownTarget } from '../../errors.ts';
import { callInputs } from '../../policy/call-input.ts';
import {
  obligationUnmet,
  policyDenied,
  policyEngineFailed,
  policyInvalid,
  sessionHistoryFull,
} from '../../policy/denials.ts';
import { networkOf } from '../../policy/network.ts';
import type { Target } from '../../policy/request.ts';
import { type PolicyService, targetName } from '../../policy/service.ts';
import { MAX_TOOLS_PER_SESSION } from '../../policy/session-facts.ts';
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
        return;
      }
      const call = callInputs.get(ctx);
      if (!call) throw new Error('authorize without validated input');
      const now = policy.now();
      const name = targetName(call.target);
      const session = policy.facts.snapshot(ctx.session.key, ctx.principal.id, name, now);
      if (call.target.kind === 'tool' && session.toolsFull && !session.toolsUsed.includes(name)) {
        ctx.decision = {
          effect: 'deny',
          determiningPolicies: ['builtin:session-history-full'],
          policySetHash: policy.live.source.hash,
          obligations: [],
          errors: [],
        };
        throw sessionHistoryFull(name, MAX_TOOLS_PER_SESSION);
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
      const { failure, ...decision } = policy.decide(facts, ctx.callId);
      ctx.decision = decision;
      if (failure === 'engine') throw policyEngineFailed(decision);
      if (failure === 'invalid') throw policyInvalid(decision);
      if (decision.effect === 'deny') {
        if (call.target.kind !== 'server' && !policy.mayUse(facts))
          throw unknownTarget(kindOf(call.target), name);
        throw policyDenied(decision);
      }
      if (decision.obligations.length > 0) throw obligationUnmet(decision);
      policy.facts.record(
        ctx.session.key,
        ctx.principal.id,
        name,
        now,
        policy.isSensitive(call.target, call.args),
        call.target.kind === 'tool',
      );
    },
  };
}

const kindOf = (t: Target): string => (t.kind === 'server' ? 'method' : t.kind);
