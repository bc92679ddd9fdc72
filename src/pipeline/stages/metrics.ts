import type { Metrics } from '../../observability/metrics.ts';
import { methodSpec } from '../../protocol/methods.ts';
import type { CallContext } from '../context.ts';
import type { Stage } from '../runner.ts';

/** The last terminal stage: records how long every earlier stage took, and how the call ended. */
export function metricsStage(metrics: Metrics): Stage {
  return {
    name: 'metrics',
    run(ctx: CallContext) {
      for (const [stage, ms] of Object.entries(ctx.timings)) metrics.observeStage(stage, ms);
      // Known methods are counted under their own label; any other (callers choose them) as `other`, so labels stay bounded.
      metrics.countCall(
        methodSpec(ctx.request.method) ? ctx.request.method : 'other',
        ctx.error?.code ?? (ctx.response?.error ? 'upstream_error' : 'ok'),
      );
    },
  };
}
