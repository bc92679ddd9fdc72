import { internal } from '../../errors.ts';
import type { Logger } from '../../observability/log.ts';
import { inspectResponse } from '../../pinning/results.ts';
import type { CallContext } from '../context.ts';
import { fail, type Stage } from '../runner.ts';

export interface InspectResultDeps {
  /** The poisoning threshold of an upstream (`upstreams.*.poisoning.threshold`). */
  readonly threshold: (upstream: string) => number;
  /** Marks the caller's history (`context.session.tainted`). */
  readonly taint: (principalId: string) => void;
  readonly log: Logger;
}

/**
 * Terminal, before the outcome record: an upstream's answer loses its tag
 * characters and bidi controls, and a tool result carrying injected
 * instructions taints its caller for later decisions. Anything that goes
 * wrong here withholds the answer rather than relay it unchecked.
 */
export function inspectResultStage(deps: InspectResultDeps): Stage {
  return {
    name: 'inspect-result',
    run(ctx: CallContext) {
      const route = ctx.route;
      const res = ctx.response;
      if (route?.kind !== 'upstream' || !res || ctx.error) return;
      try {
        const toolResult = ctx.request.method === 'tools/call';
        const out = inspectResponse(res, { toolResult, threshold: deps.threshold(route.upstream) });
        ctx.response = out.response;
        if (!out.injection) return;
        ctx.injection = out.injection;
        deps.taint(ctx.principal.id);
        deps.log.warn('instructions injected in a tool result: the caller is tainted', {
          alert: true,
          callId: ctx.callId,
          upstream: route.upstream,
          tool: route.target?.exposed,
          principal: ctx.principal.id,
          findings: out.injection.rules,
        });
      } catch (err) {
        fail(ctx, internal(err));
      }
    },
  };
}
