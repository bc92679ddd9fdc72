import { methodNotFound } from '../../errors.ts';
import { isObject, type JsonObject } from '../../jsonrpc.ts';
import { type Aggregator, isListMethod } from '../../upstream/aggregate.ts';
import type { CallContext } from '../context.ts';
import type { Stage } from '../runner.ts';

const GATEWAY_METHODS = new Set([
  'initialize',
  'ping',
  'server/discover',
  'logging/setLevel',
  'subscriptions/listen',
]);
const RESOURCE_METHODS = new Set(['resources/read', 'resources/subscribe', 'resources/unsubscribe']);

/** Decides which upstream (if any) a call is for, and translates names back to the upstream's own. */
export function routeStage(agg: Aggregator, upstreamNames: readonly string[]): Stage {
  return {
    name: 'route',
    async run(ctx: CallContext) {
      const { method } = ctx.request;
      const params = ctx.request.params;
      if (GATEWAY_METHODS.has(method) || isListMethod(method)) {
        ctx.route = { kind: 'gateway', method };
      } else if (method === 'tools/call' || method === 'prompts/get') {
        const exposed = String(params?.name);
        const t = agg.resolveName(method === 'tools/call' ? 'tool' : 'prompt', exposed);
        ctx.route = upstream(
          t.upstream,
          method,
          { ...params, name: t.original },
          { exposed, original: t.original },
        );
      } else if (RESOURCE_METHODS.has(method)) {
        const owner = await agg.resolveResource(ctx.session, String(params?.uri), ctx.sink);
        ctx.route = upstream(owner, method, params);
      } else if (method === 'completion/complete') {
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
