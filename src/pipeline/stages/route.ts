import { methodNotFound } from '../../errors.ts';
import { isObject, type JsonObject } from '../../jsonrpc.ts';
import { methodSpec } from '../../protocol/methods.ts';
import type { Aggregator } from '../../upstream/aggregate.ts';
import type { CallContext } from '../context.ts';
import type { Stage } from '../runner.ts';

/** Decides which upstream (if any) a call is for, and translates names back to the upstream's own. */
export function routeStage(agg: Aggregator, upstreamNames: readonly string[]): Stage {
  return {
    name: 'route',
    async run(ctx: CallContext) {
      const { method } = ctx.request;
      const params = ctx.request.params;
      const spec = methodSpec(method);
      const target = typeof spec?.target === 'object' ? spec.target.kind : spec?.target;
      if (spec?.answeredBy === 'gateway') {
        ctx.route = { kind: 'gateway', method };
      } else if (target === 'tool' || target === 'prompt') {
        const exposed = String(params?.name);
        const t = agg.resolveName(target, exposed);
        ctx.route = upstream(
          t.upstream,
          method,
          { ...params, name: t.original },
          { exposed, original: t.original },
        );
      } else if (target === 'resource') {
        const owner = await agg.resolveResource(ctx.session, String(params?.uri), ctx.sink);
        ctx.route = upstream(owner, method, params);
      } else if (target === 'ref') {
        ctx.route = await routeCompletion(agg, ctx, params);
      } else if (upstreamNames.length === 1) {
        // A method the gateway does not know goes, untouched, to the only upstream there is.
        ctx.route = upstream(upstreamNames[0]!, method, params);
      } else {
        throw methodNotFound(method);
      }
    },
  };
}

async function routeCompletion(agg: Aggregator, ctx: CallContext, params: JsonObject | undefined) {
  const ref = isObject(params?.ref) ? params.ref : {};
  if (ref.type === 'ref/prompt' && typeof ref.name === 'string') {
    const t = agg.resolveName('prompt', ref.name);
    return upstream(t.upstream, 'completion/complete', { ...params, ref: { ...ref, name: t.original } });
  }
  if (ref.type === 'ref/resource' && typeof ref.uri === 'string') {
    return upstream(await agg.resolveResource(ctx.session, ref.uri, ctx.sink), 'completion/complete', params);
  }
  throw methodNotFound('completion/complete');
}

const upstream = (
  name: string,
  method: string,
  params: JsonObject | undefined,
  target?: { exposed: string; original: string },
) => ({ kind: 'upstream' as const, upstream: name, method, params, ...(target ? { target } : {}) });
