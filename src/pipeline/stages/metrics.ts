import type { Metrics } from '../../observability/metrics.ts';
import type { CallContext } from '../context.ts';
import type { Stage } from '../runner.ts';

/** Methods counted under their own label; any other (callers choose them) counts as `other`, so labels stay bounded. */
const PROTOCOL_METHODS: ReadonlySet<string> = new Set([
  'initialize',
  'ping',
  'server/discover',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
  'subscriptions/listen',
]);

/** The last terminal stage: records how long every earlier stage took, and how the call ended. */
export function metricsStage(metrics: Metrics): Stage {
  return {
    name: 'metrics',
    run(ctx: CallContext) {
      for (const [stage, ms] of Object.entries(ctx.timings)) metrics.observeStage(stage, ms);
      metrics.countCall(
        PROTOCOL_METHODS.has(ctx.request.method) ? ctx.request.method : 'other',
        ctx.error?.code ?? (ctx.response?.error ? 'upstream_error' : 'ok'),
      );
    },
  };
}
