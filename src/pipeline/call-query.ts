import type { CallQuery } from '../policy/decide.ts';
import { networkOf } from '../policy/facts/network.ts';
import type { PolicyService } from '../policy/service.ts';
import type { CallContext } from './context.ts';

/** What the gateway knows of a call before its target and arguments: who, from where, with which history. */
export function gatewayQuery(
  policy: PolicyService,
  ctx: CallContext,
): Pick<CallQuery, 'principal' | 'method' | 'network' | 'history' | 'now' | 'callId' | 'signed'> {
  const now = policy.now();
  const principalId = ctx.principal.id;
  return {
    principal: ctx.principal,
    method: ctx.request.method,
    network: networkOf(ctx.session),
    now,
    callId: ctx.callId,
    signed: ctx.requestSigned === true,
    history: {
      admits: () => policy.facts.admits(principalId, now),
      snapshot: (name) => policy.facts.snapshot(principalId, name, now),
    },
  };
}
