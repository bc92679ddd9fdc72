import { JSONRPC } from '../errors.ts';
import { isObject, type JsonRpcErrorObject, type JsonRpcNotification } from '../jsonrpc.ts';
import type { DownstreamSession } from '../session.ts';
import type { Aggregator } from './aggregate.ts';
import { type RelatedSink, SUBSCRIPTION_ID, type UpstreamConnection } from './connection.ts';

/**
 * A legacy client's `resources/subscribe` to a modern upstream, which has no
 * such method: the gateway holds a `subscriptions/listen` for that URI open
 * upstream and relays its `resources/updated` to the client's standalone stream.
 * Resolves once the upstream has acknowledged the listen (undefined), or with
 * the error the client's subscribe gets instead: the upstream's own, or a
 * timeout, logged with the upstream's name and the cause.
 */
export function bridgeSubscribe(
  agg: Aggregator,
  session: DownstreamSession,
  conn: UpstreamConnection,
  method: string,
  uri: string,
): Promise<JsonRpcErrorObject | undefined> {
  const key = `${conn.name}\u0000${uri}`;
  session.subscriptions.get(key)?.abort();
  session.subscriptions.delete(key);
  if (method !== 'resources/subscribe') return Promise.resolve(undefined);
  const abort = new AbortController();
  session.subscriptions.set(key, abort);
  // The client's subscribe is answered once the upstream has acknowledged the listen, so no update is missed.
  let settle: (refusal: JsonRpcErrorObject | undefined) => void = () => {};
  const ready = new Promise<JsonRpcErrorObject | undefined>((resolve) => {
    settle = resolve;
  });
  const timeoutMs = agg.timeoutOf(conn.name);
  const timer = setTimeout(() => {
    agg.log.warn('upstream did not acknowledge a subscription; the subscribe is refused', {
      upstream: conn.name,
      cause: `no acknowledgement within ${timeoutMs} ms`,
    });
    if (session.subscriptions.get(key) === abort) session.subscriptions.delete(key);
    abort.abort();
    settle(TIMED_OUT);
  }, timeoutMs);
  timer.unref();
  const acknowledged = () => {
    clearTimeout(timer);
    settle(undefined);
  };
  const listening = conn.request('subscriptions/listen', listenParams(agg, session, conn, uri), {
    sink: relay(agg, session, abort, acknowledged),
    signal: abort.signal,
    timeoutMs: 0,
  });
  void listening.then((res) => {
    clearTimeout(timer);
    if (res.error && !abort.signal.aborted) {
      agg.log.warn('upstream ended a subscription with an error', { upstream: conn.name, error: res.error });
    }
    settle(res.error);
    if (session.subscriptions.get(key) === abort) session.subscriptions.delete(key);
  });
  return ready;
}

const TIMED_OUT: JsonRpcErrorObject = { code: JSONRPC.UPSTREAM_UNAVAILABLE, message: 'Upstream timed out' };

const listenParams = (agg: Aggregator, session: DownstreamSession, conn: UpstreamConnection, uri: string) =>
  agg.upstreamParams(conn, session, { notifications: { resourceSubscriptions: [uri] } });

/** Updates outlive the subscribe's own check: each passes the revocation gate on its way to the stream. */
function relay(
  agg: Aggregator,
  session: DownstreamSession,
  abort: AbortController,
  acknowledged: () => void,
): RelatedSink {
  const stream = session.unrelated;
  const toClient = stream ? agg.gate(session, stream, () => abort.abort()) : undefined;
  return {
    notify: (m) => {
      if (m.method === 'notifications/subscriptions/acknowledged') acknowledged();
      if (m.method === 'notifications/resources/updated') toClient?.notify(untag(m));
    },
    request: (m) =>
      Promise.resolve({
        jsonrpc: '2.0',
        id: m.id,
        error: { code: JSONRPC.METHOD_NOT_FOUND, message: 'Not supported' },
      }),
  };
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
