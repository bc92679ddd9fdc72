import { isObject, type JsonRpcNotification } from '../jsonrpc.ts';
import type { DownstreamSession } from '../session.ts';
import type { Aggregator } from './aggregate.ts';
import { type RelatedSink, SUBSCRIPTION_ID, type UpstreamConnection } from './connection.ts';

/**
 * A legacy client's `resources/subscribe` to a modern upstream, which has no
 * such method: the gateway holds a `subscriptions/listen` for that URI open
 * upstream and relays its `resources/updated` to the client's standalone stream.
 */
export function bridgeSubscribe(
  agg: Aggregator,
  session: DownstreamSession,
  conn: UpstreamConnection,
  method: string,
  uri: string,
): Promise<void> {
  const key = `${conn.name}\u0000${uri}`;
  session.subscriptions.get(key)?.abort();
  session.subscriptions.delete(key);
  if (method !== 'resources/subscribe') return Promise.resolve();
  const abort = new AbortController();
  session.subscriptions.set(key, abort);
  let acknowledged: () => void = () => {};
  // The client's subscribe is answered once the upstream has acknowledged the listen, so no update is missed.
  const ready = new Promise<void>((resolve) => {
    acknowledged = resolve;
    // An upstream that never acknowledges must not hold the client's subscribe forever.
    setTimeout(resolve, agg.timeoutOf(conn.name)).unref();
  });
  // Updates outlive the subscribe's own check: each passes the revocation gate on its way to the stream.
  const stream = session.unrelated;
  const toClient = stream ? agg.gate(session, stream, () => abort.abort()) : undefined;
  const relay: RelatedSink = {
    notify: (m) => {
      if (m.method === 'notifications/subscriptions/acknowledged') acknowledged();
      if (m.method === 'notifications/resources/updated') toClient?.notify(untag(m));
    },
    request: (m) =>
      Promise.resolve({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'Not supported' } }),
  };
  const params = agg.upstreamParams(conn, session, { notifications: { resourceSubscriptions: [uri] } });
  const listening = conn.request('subscriptions/listen', params, {
    sink: relay,
    signal: abort.signal,
    timeoutMs: 0,
  });
  void listening.finally(() => {
    acknowledged();
    if (session.subscriptions.get(key) === abort) session.subscriptions.delete(key);
  });
  return ready;
}

function untag(m: JsonRpcNotification): JsonRpcNotification {
  const params = isObject(m.params) ? { ...m.params } : {};
  if (isObject(params._meta)) {
    const { [SUBSCRIPTION_ID]: _dropped, ...meta } = params._meta;
    params._meta = meta;
    if (Object.keys(meta).length === 0) delete params._meta;
  }
  return { ...m, params };
}
