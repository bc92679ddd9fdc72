import type { BreakGlass } from '../../breakglass/guard.ts';
import { PortcullisError } from '../../errors.ts';
import type { CallInput } from '../../policy/call-input.ts';
import type { CallOutcome, Honoured } from '../../policy/decide.ts';
import { targetName } from '../../policy/service.ts';
import type { CallContext, Decision } from '../context.ts';
import type { Stage } from '../runner.ts';

/**
 * The allow an open break-glass window gives a call the policy engine failed
 * on, policy denied, or that needs an approval, when the window covers it;
 * undefined otherwise. Nothing else is overridden: identity, routing and
 * argument checks have run already, history limits and any obligation but
 * `approval` still refuse, and the decision record must still be durable.
 */
export function breakGlassOverride(
  breakGlass: BreakGlass,
  ctx: CallContext,
  call: CallInput,
  outcome: CallOutcome,
  refusal: Error | undefined,
  honoured: Honoured,
): { windowId: string; decision: Decision } | undefined {
  if (outcome.kind !== 'decision' || outcome.builtin || ctx.route?.kind !== 'upstream') return undefined;
  const d = outcome.decision;
  const refused = d.failure !== undefined || d.effect === 'deny';
  const kept = refused ? [] : d.obligations.filter((o) => o !== 'approval');
  if (!refused && (kept.length === d.obligations.length || kept.some((o) => !honoured.has(o))))
    return undefined;
  const window = breakGlass.cover({
    principal: ctx.principal,
    upstream: ctx.route.upstream,
    tool: call.target.kind === 'tool' ? call.target.tool.name : undefined,
  });
  if (!window) return undefined;
  const code = refusal instanceof PortcullisError ? refusal.code : 'ERR_APPROVAL_REQUIRED';
  return {
    windowId: window.id,
    decision: {
      effect: 'allow',
      determiningPolicies: ['builtin:break-glass'],
      policySetHash: d.policySetHash,
      obligations: kept,
      errors: d.errors,
      overridden: { code, determiningPolicies: d.determiningPolicies, obligations: d.obligations },
    },
  };
}

/** After the decision record is durable: each call let through by a window raises its `used` alert. */
export function breakGlassStage(breakGlass: BreakGlass): Stage {
  return {
    name: 'break-glass',
    run(ctx) {
      if (!ctx.breakGlassId) return;
      const target = ctx.callInput?.target;
      breakGlass.used(ctx.breakGlassId, {
        callId: ctx.callId,
        session: ctx.session.key,
        tool: target ? targetName(target) : '',
        principal: ctx.principal.id,
      });
    },
  };
}
