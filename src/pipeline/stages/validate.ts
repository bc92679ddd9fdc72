import { unknownTarget } from '../../errors.ts';
import { isObject, type JsonObject } from '../../jsonrpc.ts';
import {
  callInputs,
  listenInputs,
  MAX_LISTEN_RESOURCES,
  REASON_META_KEY,
  type ReasonSource,
} from '../../policy/call-input.ts';
import { invalidArguments } from '../../policy/denials.ts';
import { networkOf } from '../../policy/facts/network.ts';
import type { Target } from '../../policy/facts/request.ts';
import { NotRepresentable, toCedarValue } from '../../policy/model/cedar-types.ts';
import { checkAgainstSchema } from '../../policy/model/json-schema.ts';
import { boundsProblem, NOT_UNICODE } from '../../policy/model/limits.ts';
import type { PolicyService } from '../../policy/service.ts';
import type { Aggregator } from '../../upstream/aggregate.ts';
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
        listenInputs.set(ctx, { resources: await listenResources(agg, ctx, params), ...reason });
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
      const args = isObject(params.arguments) ? params.arguments : {};
      const bounds = boundsProblem(args, policy.cfg.limits);
      if (bounds) throw invalidArguments(bounds);
      const method = ctx.request.method;
      if (method !== 'tools/call') {
        callInputs.set(ctx, {
          target: otherTarget(method, route.upstream, params, route.target?.exposed),
          input: {},
          args,
          ...reason,
        });
        return;
      }
      const exposed = route.target?.exposed ?? '';
      if (policy.catalog.isRefused(exposed)) throw unknownTarget('tool', exposed);
      if (!policy.catalog.tool(exposed)) {
        // An upstream that is down fails here as it would in forward (no definition: no decision).
        await agg.connection(ctx.session, route.upstream);
        await agg.toolSchema(ctx.session, exposed, ctx.sink);
      }
      const tool = policy.catalog.tool(exposed);
      if (!tool) throw unknownTarget('tool', exposed);
      const target: Target = { kind: 'tool', tool };
      const problems = checkAgainstSchema(tool.inputSchema, args, policy.cfg.limits.maxDepth);
      let input: Record<string, unknown> | undefined;
      let problem = problems[0];
      if (!problem) {
        try {
          input = toCedarValue(tool.input, args) as Record<string, unknown>;
        } catch (err) {
          if (!(err instanceof NotRepresentable)) throw err;
          problem = `a value cannot be represented for policy (${err.message})`;
        }
      }
      if (problem !== undefined || !input) {
        const now = policy.now();
        const session = policy.facts.snapshot(ctx.principal.id, exposed, now);
        if (
          !policy.mayUse(
            policy.baseFacts(ctx.principal, method, target, session, now, networkOf(ctx.session)),
          )
        ) {
          throw unknownTarget('tool', exposed);
        }
        throw invalidArguments(problem ?? 'invalid');
      }
      callInputs.set(ctx, { target, input, args, ...reason });
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
): Target {
  if (method === 'prompts/get')
    return { kind: 'prompt', name: exposed ?? String(params.name), server: upstream };
  if (method.startsWith('resources/') && typeof params.uri === 'string') {
    return { kind: 'resource', uri: params.uri, server: upstream };
  }
  return { kind: 'server', server: upstream };
}

/** `params._meta["io.portcullis/reason"]` for this call, else the token's reason, else "", and which it was. */
function declaredReason(
  params: JsonObject,
  tokenReason: string | undefined,
  max: number,
): { reason: string; reasonSource: ReasonSource } {
  const meta = isObject(params._meta) ? params._meta : {};
  const declared = meta[REASON_META_KEY];
  if (declared !== undefined) {
    if (typeof declared !== 'string') throw invalidArguments('the declared reason must be a string');
    if (declared.length > max) throw invalidArguments('the declared reason is too long');
    if (!declared.isWellFormed()) throw invalidArguments(`the declared reason: ${NOT_UNICODE}`);
    if (declared.trim() !== '') return { reason: declared, reasonSource: 'declared' };
  }
  return tokenReason ? { reason: tokenReason, reasonSource: 'token' } : { reason: '', reasonSource: null };
}
