import type { Metrics } from '../../observability/metrics.ts';
import type { CallContext } from '../context.ts';
import type { Stage } from '../runner.ts';

/** The last terminal stage: records how long every earlier stage took, and how the call ended. */
export function metricsStage(metrics: Metrics): Stage {
  return {
    name: 'metrics',
    run(ctx: CallContext) {
      for (const [stage, ms] of Object.entries(ctx.timings)) metrics.observeStage(stage, ms);
      metrics.countCall(
        ctx.request.method,
        ctx.error?.code ?? (ctx.response?.error ? 'upstream_error' : 'ok'),
      );
    },
  };
}
