import type { Principal } from './identity/principal.ts';
import type { JsonRpcId } from './jsonrpc.ts';
import type { Era } from './protocol/versions.ts';
import type { ClientProfile, RelatedSink } from './upstream/connection.ts';

/**
 * Who the gateway is talking to downstream. A legacy client gets one per
 * `Mcp-Session-Id` (or per stdio connection); a modern, stateless client one per
 * request, sharing a correlation key per principal.
 */
export interface DownstreamSession {
  /** Legacy: the session id. Modern: the request's own id. */
  readonly id: string;
  /** Upstream connections are pooled under this key. */
  readonly key: string;
  /** Who is calling; ANONYMOUS on an open (loopback-only) gateway. A session stays bound to it. */
  principal: Principal;
  /** The peer's network address (HTTP); absent for a local stdio client. Policy sees it. */
  readonly remoteAddress?: string;
  readonly era: Era;
  protocolVersion: string;
  client: ClientProfile;
  /** Where messages go that belong to no request (the legacy GET stream, stdout in wrap). */
  readonly unrelated?: RelatedSink;
  /** Legacy `logging/setLevel`; modern upstreams get it in each request's `_meta`. */
  logLevel?: string;
  /** Set once a legacy client sent `initialize`. */
  initialized: boolean;
  /** Set when the session ends: nothing may take upstream instances in its name afterwards. */
  closed: boolean;
  /** Upstream listens that stand in for this legacy client's resource subscriptions. */
  readonly subscriptions: Map<string, AbortController>;
  /** Client requests in flight, by client id: lets `notifications/cancelled` reach them. */
  readonly inflight: Map<JsonRpcId, AbortController>;
}

export function newSession(init: {
  id: string;
  key: string;
  principal: Principal;
  remoteAddress?: string | undefined;
  era: Era;
  protocolVersion: string;
  client?: ClientProfile;
  unrelated?: RelatedSink;
}): DownstreamSession {
  return {
    id: init.id,
    key: init.key,
    principal: init.principal,
    ...(init.remoteAddress ? { remoteAddress: init.remoteAddress } : {}),
    era: init.era,
    protocolVersion: init.protocolVersion,
    client: init.client ?? { capabilities: {}, info: {} },
    ...(init.unrelated ? { unrelated: init.unrelated } : {}),
    initialized: false,
    closed: false,
    inflight: new Map(),
    subscriptions: new Map(),
  };
}
