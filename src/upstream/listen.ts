import { isObject, type JsonObject, type JsonRpcId, type JsonRpcNotification } from '../jsonrpc.ts';
import type { DownstreamSession } from '../session.ts';
import type { Aggregator } from './aggregate.ts';
import { type RelatedSink, SUBSCRIPTION_ID, type UpstreamConnection } from './connection.ts';

const ACKNOWLEDGED = 'notifications/subscriptions/acknowledged';
/** Which filter flag admits which notification. */
const FLAG_OF: Record<string, string> = {
  'notifications/tools/list_changed': 'toolsListChanged',
  'notifications/prompts/list_changed': 'promptsListChanged',
  'notifications/resources/list_changed': 'resourcesListChanged',
};

/** One client's listen, as the gateway received and authorized it. */
export interface ListenCall {
  readonly request: { readonly id: JsonRpcId; readonly params?: JsonObject | undefined };
  readonly session: DownstreamSession;
  /** The client's stream for this listen. */
  readonly sink: RelatedSink;
  /** Aborted when the client goes away: the listen ends. */
  readonly signal: AbortSignal;
  /** The resources it follows, each with the upstream that owns it (each authorized as a subscription). */
  readonly resources: readonly { readonly uri: string; readonly server: string }[];
}

/**
 * `subscriptions/listen` across every upstream: the gateway acknowledges what
 * it can honour, opens a listen on each modern upstream, takes legacy
 * upstreams' unprompted list changes, and relays all of it on the client's
 * stream under the client's subscription id until the client goes away.
 */
export async function listenAcrossUpstreams(agg: Aggregator, ctx: ListenCall): Promise<JsonObject> {
  const subscriptionId = ctx.request.id;
  const requested = isObject(ctx.request.params?.notifications) ? ctx.request.params.notifications : {};
  const conns = await agg.connections(ctx.session);
  const honoured = honour(requested, await agg.capabilities(ctx.session));
  // A listen outlives the check its request passed: what it admits goes out only while the caller still passes one.
  const toClient = agg.gate(ctx.session, ctx.sink, () => ctx.session.inflight.get(ctx.request.id)?.abort());
  const relay: RelatedSink = {
    notify: (m) => {
      if (m.method !== ACKNOWLEDGED && admits(honoured, m)) toClient.notify(tag(m, subscriptionId));
    },
    request: (m, signal) => toClient.request(m, signal),
  };
  ctx.sink.notify(
    tag({ jsonrpc: '2.0', method: ACKNOWLEDGED, params: { notifications: honoured } }, subscriptionId),
  );
  const removeListener = agg.addListener(ctx.session.key, relay);
  try {
    const upstreamListens = conns
      .filter((c) => c.handshake?.era === 'modern')
      .map((c) => listenUpstream(agg, ctx, c, honoured, relay));
    await Promise.race([untilAborted(ctx.signal), Promise.all(upstreamListens)]);
  } finally {
    removeListener();
  }
  return { _meta: { [SUBSCRIPTION_ID]: subscriptionId } };
}

function listenUpstream(
  agg: Aggregator,
  ctx: ListenCall,
  conn: UpstreamConnection,
  filter: JsonObject,
  relay: RelatedSink,
) {
  // Each upstream hears only of the resources it owns (each authorized in the authorize stage).
  const owned = ctx.resources.filter((r) => r.server === conn.name).map((r) => r.uri);
  const mine: JsonObject = { ...filter };
  if (Array.isArray(filter.resourceSubscriptions))
    mine.resourceSubscriptions = filter.resourceSubscriptions.filter((u) => owned.includes(String(u)));
  const params = agg.upstreamParams(conn, ctx.session, { notifications: mine });
  const listening = conn.request('subscriptions/listen', params, {
    sink: relay,
    signal: ctx.signal,
    timeoutMs: 0,
    clientId: ctx.request.id,
  });
  // The client's listen goes on with the other upstreams; this one's silence is logged, not hidden.
  return listening.then((res) => {
    if (res.error && !ctx.signal.aborted)
      agg.log.warn('upstream ended a listen with an error', { upstream: conn.name, error: res.error });
  });
}

function honour(requested: JsonObject, caps: JsonObject): JsonObject {
  const out: JsonObject = {};
  const listChanged = (cap: string) => isObject(caps[cap]) && (caps[cap] as JsonObject).listChanged === true;
  if (requested.toolsListChanged === true && listChanged('tools')) out.toolsListChanged = true;
  if (requested.promptsListChanged === true && listChanged('prompts')) out.promptsListChanged = true;
  if (requested.resourcesListChanged === true && listChanged('resources')) out.resourcesListChanged = true;
  const canSubscribe = isObject(caps.resources) && (caps.resources as JsonObject).subscribe === true;
  if (canSubscribe && Array.isArray(requested.resourceSubscriptions)) {
    out.resourceSubscriptions = requested.resourceSubscriptions.filter((u) => typeof u === 'string');
  }
  return out;
}

function admits(filter: JsonObject, m: JsonRpcNotification): boolean {
  const flag = FLAG_OF[m.method];
  if (flag) return filter[flag] === true;
  if (m.method === 'notifications/resources/updated') {
    const uri = isObject(m.params) ? m.params.uri : undefined;
    return Array.isArray(filter.resourceSubscriptions) && filter.resourceSubscriptions.includes(uri);
  }
  return false;
}

function tag(m: JsonRpcNotification, subscriptionId: unknown): JsonRpcNotification {
  const params = isObject(m.params) ? m.params : {};
  const meta = isObject(params._meta) ? params._meta : {};
  return { ...m, params: { ...params, _meta: { ...meta, [SUBSCRIPTION_ID]: subscriptionId } } };
}

const untilAborted = (signal: AbortSignal): Promise<void> =>
  signal.aborted
    ? Promise.resolve()
    : new Promise((r) => signal.addEventListener('abort', () => r(), { once: true }));
