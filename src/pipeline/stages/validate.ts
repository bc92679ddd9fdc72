import { isObject, type JsonObject } from '../../jsonrpc.ts';
import { MAX_LISTEN_RESOURCES, REASON_META_KEY } from '../../policy/call-input.ts';
import {
  type CallQuery,
  type CallTarget,
  reasonMeta,
  refusalOf,
  resolveReason,
  validateCall,
} from '../../policy/decide.ts';
import { invalidArguments } from '../../policy/denials.ts';
import { NOT_UNICODE } from '../../policy/model/limits.ts';
import type { PolicyService } from '../../policy/service.ts';
import type { Aggregator } from '../../upstream/aggregate.ts';
import { gatewayQuery } from '../call-query.ts';
import type { CallContext } from '../context.ts';
import type { Stage } from '../runner.ts';

/**
 * Before policy: the target is one policy knows, the arguments are bounded and
 * match the tool's inputSchema, and are converted to the typed values policy
 * decides on. A tool the caller may not see fails exactly like a missing one,
 * even when its arguments are also wrong.
 */
export function validateStage(agg: Aggregator, policy: PolicyService): Stage {
  return {
    name: 'validate',
    async run(ctx: CallContext) {
      const route = ctx.route;
      const params: JsonObject = ctx.request.params ?? {};
      if (
        route?.kind === 'gateway' &&
        route.method === 'subscriptions/listen' &&
        ctx.session.era === 'modern'
      ) {
        const reason = declaredReason(params, ctx.principal.reason, policy.cfg.limits.maxReasonLength);
        ctx.listenInput = { resources: await listenResources(agg, ctx, params), ...reason };
        return;
      }
      if (route?.kind !== 'upstream') return;
      const ref = isObject(params.ref) ? params.ref : {};
      for (const [field, v] of [
        ['name', params.name],
        ['uri', params.uri],
        ['ref.name', ref.name],
        ['ref.uri', ref.uri],
      ] as const) {
        if (typeof v === 'string' && !v.isWellFormed()) throw invalidArguments(`${field}: ${NOT_UNICODE}`);
      }
      const reason = declaredReason(params, ctx.principal.reason, policy.cfg.limits.maxReasonLength);
      const method = ctx.request.method;
      const exposed = route.target?.exposed;
      const query: CallQuery = {
        ...gatewayQuery(policy, ctx),
        target:
          method === 'tools/call'
            ? { kind: 'tool', name: exposed ?? '' }
            : otherTarget(method, route.upstream, params, exposed),
        arguments: isObject(params.arguments) ? params.arguments : {},
        reason: reason.reason,
      };
      let checked = validateCall(policy, query);
      if ('kind' in checked && checked.kind === 'unknown-tool' && checked.missing) {
        // An upstream that is down fails here as it would in forward (no definition: no decision).
        await agg.connection(ctx.session, route.upstream);
        await agg.toolSchema(ctx.session, checked.name, ctx.sink);
        checked = validateCall(policy, query);
      }
      if ('kind' in checked) throw refusalOf(policy, query, checked) ?? new Error('validated without a call');
      ctx.callInput = { ...checked, ...reason };
    },
  };
}

/** The resources a listen asks to follow, each with its owner (an unknown one fails like a missing resource). */
async function listenResources(agg: Aggregator, ctx: CallContext, params: JsonObject) {
  const wanted = isObject(params.notifications) ? params.notifications.resourceSubscriptions : undefined;
  if (wanted === undefined) return [];
  if (!Array.isArray(wanted) || !wanted.every((u) => typeof u === 'string'))
    throw invalidArguments('resourceSubscriptions must be an array of URIs');
  if (wanted.length > MAX_LISTEN_RESOURCES)
    throw invalidArguments(`more than ${MAX_LISTEN_RESOURCES} resourceSubscriptions`);
  if (!wanted.every((u) => u.isWellFormed())) throw invalidArguments(`a resource URI: ${NOT_UNICODE}`);
  const resources: { kind: 'resource'; uri: string; server: string }[] = [];
  for (const uri of new Set(wanted)) {
    resources.push({ kind: 'resource', uri, server: await agg.resolveResource(ctx.session, uri, ctx.sink) });
  }
  return resources;
}

function otherTarget(
  method: string,
  upstream: string,
  params: JsonObject,
  exposed: string | undefined,
): CallTarget {
  if (method === 'prompts/get')
    return { kind: 'prompt', name: exposed ?? String(params.name), server: upstream };
  if (method.startsWith('resources/') && typeof params.uri === 'string') {
    return { kind: 'resource', uri: params.uri, server: upstream };
  }
  return { kind: 'server', server: upstream };
}

/** `params._meta["io.portcullis/reason"]` for this call, else the token's reason, else "", and which it was. */
const declaredReason = (params: JsonObject, tokenReason: string | undefined, max: number) =>
  resolveReason(reasonMeta(params, REASON_META_KEY), tokenReason, max);
