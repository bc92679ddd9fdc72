import { SIGNATURE_META_KEY } from '../../attest/request-signature.ts';
import { methodNotFound } from '../../errors.ts';
import { errorResponse, isObject, type JsonObject, resultResponse } from '../../jsonrpc.ts';
import { isListMethod } from '../../protocol/methods.ts';
import { toModernResult } from '../../protocol/modern.ts';
import type { Aggregator } from '../../upstream/aggregate.ts';
import { SUBSCRIPTION_ID } from '../../upstream/connection.ts';
import { listenAcrossUpstreams } from '../../upstream/listen.ts';
import { fulfilInputRequired } from '../../upstream/mrtr.ts';
import { bridgeSubscribe } from '../../upstream/subscribe-bridge.ts';
import type { CallContext } from '../context.ts';
import type { Stage } from '../runner.ts';

/**
 * Carries out the route: answers gateway methods, or relays to the upstream and
 * relays back. `recheck` runs before any further request this call sends
 * upstream (an `input_required` retry): the caller's identity and revocation again.
 */
export function forwardStage(agg: Aggregator, recheck: (ctx: CallContext) => Promise<void>): Stage {
  return {
    name: 'forward',
    async run(ctx: CallContext) {
      const route = ctx.route;
      if (!route) throw new Error('forward without a route');
      if (route.kind === 'gateway') {
        if (isListMethod(route.method)) {
          // What the caller may see of it is the filter-list stage's to decide: it answers.
          const items = await agg.list(ctx.session, route.method, ctx.request.params, ctx.sink);
          ctx.listed = { method: route.method, items };
          return;
        }
        const result = await answerLocally(agg, ctx, route.method);
        ctx.response = resultResponse(ctx.request.id, eraResult(ctx, result));
        return;
      }
      const conn =
        route.method === 'tools/call' && route.target
          ? await agg.toolConnection(ctx.session, route.upstream, route.target, ctx.sink)
          : await agg.connection(ctx.session, route.upstream);
      if (isSubscription(route.method) && conn.handshake?.era === 'modern') {
        const refused = await bridgeSubscribe(
          agg,
          ctx.session,
          conn,
          route.method,
          String(route.params?.uri),
        );
        ctx.response = refused ? errorResponse(ctx.request.id, refused) : resultResponse(ctx.request.id, {});
        return;
      }
      const params = agg.upstreamParams(conn, ctx.session, withoutRequestSignature(route.params));
      const send = async (p: JsonObject | undefined) => {
        const reply = await conn.exchange(route.method, p, {
          sink: ctx.sink,
          signal: ctx.signal,
          clientId: ctx.request.id,
          ...sentHeaders(ctx),
        });
        // A retry never sent leaves what became of the last one sent.
        if (reply.outcome !== 'not-sent') ctx.upstream = reply.outcome;
        return reply.response;
      };
      let res = await send(params);
      if (ctx.session.era === 'legacy') {
        res = await fulfilInputRequired(res, params, {
          sink: ctx.sink,
          retry: send,
          signal: ctx.signal,
          beforeRetry: () => recheck(ctx),
        });
      }
      ctx.response = res.result
        ? { ...res, id: ctx.request.id, result: eraResult(ctx, withClientSubscriptionId(res.result, ctx)) }
        : { ...res, id: ctx.request.id };
    },
  };
}

/** `Mcp-Param-*` headers and the brokered credential, when the call has either; the credential wins a clash. */
function sentHeaders(ctx: CallContext): { headers?: Record<string, string> } {
  if (!ctx.forwardHeaders && !ctx.upstreamCredential) return {};
  return { headers: { ...ctx.forwardHeaders, ...ctx.upstreamCredential?.headers } };
}

/** A listen stream's closing result names the subscription by the client's request id, not ours. */
function withClientSubscriptionId(result: JsonObject, ctx: CallContext): JsonObject {
  const meta = isObject(result._meta) ? result._meta : undefined;
  if (!meta || !(SUBSCRIPTION_ID in meta)) return result;
  return { ...result, _meta: { ...meta, [SUBSCRIPTION_ID]: ctx.request.id } };
}

const isSubscription = (method: string): boolean =>
  method === 'resources/subscribe' || method === 'resources/unsubscribe';

/** A legacy upstream's result, on its way to a modern client, gains the fields that era requires. */
export const eraResult = (ctx: CallContext, result: JsonObject): JsonObject =>
  ctx.session.era === 'modern' ? toModernResult(ctx.request.method, result) : result;

async function answerLocally(agg: Aggregator, ctx: CallContext, method: string): Promise<JsonObject> {
  const { session, request } = ctx;
  const params = request.params;
  switch (method) {
    case 'ping':
      return {};
    case 'initialize':
      agg.admit(session);
      // Upstream connections mirror what this client can do (sampling, roots, elicitation).
      session.client = {
        capabilities: isObject(params?.capabilities) ? params.capabilities : {},
        info: isObject(params?.clientInfo) ? params.clientInfo : {},
      };
      session.initialized = true;
      return agg.initializeResult(session, params?.protocolVersion);
    case 'subscriptions/listen':
      if (session.era !== 'modern') throw methodNotFound(method);
      return listenAcrossUpstreams(agg, {
        request,
        session,
        sink: ctx.sink,
        signal: ctx.signal,
        resources: ctx.listenInput?.resources ?? [],
      });
    case 'server/discover':
      return agg.discoverResult(session);
    case 'logging/setLevel': {
      if (typeof params?.level === 'string') session.logLevel = params.level;
      const conns = (await agg.connections(session)).filter(
        (c) => c.handshake?.era === 'legacy' && c.handshake.capabilities.logging,
      );
      await Promise.all(conns.map((c) => c.request(method, params)));
      return {};
    }
    default:
      throw methodNotFound(method);
  }
}

/**
 * The caller's request signature is the gateway's to check, not the
 * upstream's: left in, a compromised upstream could replay it elsewhere.
 */
function withoutRequestSignature(params: JsonObject | undefined): JsonObject | undefined {
  const meta = isObject(params?._meta) ? params._meta : undefined;
  if (!params || !meta || !(SIGNATURE_META_KEY in meta)) return params;
  const { [SIGNATURE_META_KEY]: _signature, ...rest } = meta;
  return { ...params, _meta: rest };
}
