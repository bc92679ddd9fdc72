import { JSONRPC, UpstreamError } from '../errors.ts';
import {
  errorResponse,
  isNotification,
  isObject,
  isRequest,
  type JsonObject,
  type JsonRpcId,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '../jsonrpc.ts';
import { stripInvisible } from '../pinning/invisible.ts';
import { type Era, GATEWAY_INFO, LATEST_LEGACY, LATEST_MODERN, META } from '../protocol/versions.ts';
import type { Isolation } from './config.ts';
import type { EraAware, MessageTransport } from './transport.ts';

/** Where messages that belong to one forwarded request go (progress, server-to-client requests). */
export interface RelatedSink {
  notify(message: JsonRpcNotification): void;
  /**
   * A server-to-client request; resolves with the client's response, or, once
   * `signal` aborts, with a cancel error (the client is told, and nothing waits on).
   */
  request(message: JsonRpcRequest, signal?: AbortSignal): Promise<JsonRpcResponse>;
  /** Tells the client the call is alive without a message (an SSE comment); where there is no stream, nothing. */
  keepAlive?(): void;
}

/** What the gateway tells an upstream about the client it speaks for. */
export interface ClientProfile {
  capabilities: JsonObject;
  info: JsonObject;
}

export interface HandshakeResult {
  era: Era;
  protocolVersion: string;
  capabilities: JsonObject;
  serverInfo: JsonObject;
  instructions?: string;
}

/**
 * What became of a request sent upstream: `answered` by the upstream;
 * `no-answer` (sent, then a timeout, a cancel or a lost connection: the
 * upstream may have acted); `not-sent`.
 */
export type UpstreamOutcome = 'answered' | 'no-answer' | 'not-sent';

/** An upstream's response, or the one the gateway made up for it, and which it is. */
export interface UpstreamReply {
  readonly response: JsonRpcResponse;
  readonly outcome: UpstreamOutcome;
}

interface Pending {
  resolve(r: UpstreamReply): void;
  /** The id the client gave this request: listen notifications carry it as their subscription id. */
  clientId?: JsonRpcId;
  sink: RelatedSink | undefined;
  timer: NodeJS.Timeout | undefined;
  progressToken?: string | number;
}

export interface RequestOptions {
  sink?: RelatedSink;
  signal?: AbortSignal;
  /** 0 for no timeout. */
  timeoutMs?: number;
  headers?: Record<string, string>;
  clientId?: JsonRpcId;
}

export interface ConnectionOptions {
  name: string;
  timeoutMs: number;
  /** Messages from the upstream that belong to no request (list_changed, logging). */
  unrelated?: RelatedSink;
  /**
   * Who this connection serves. Only a session's own may relay a request of the
   * upstream's to the client or route unprompted messages by the newest call;
   * a shared one hands those to `unrelated` alone, which decides who sees them.
   */
  isolation?: Isolation;
  /**
   * The era of the client this connection speaks for, tried first: some servers
   * send sampling, elicitation and roots requests only in a 2025-era session.
   */
  clientEra?: Era;
  /** Era this upstream answered in before for the same caller and client era; tried first. */
  knownEra?: Era;
  onClose?: () => void;
}

/**
 * One live connection to one upstream: id remapping, timeouts, the era
 * handshake, and routing of what the upstream sends back to the right caller.
 */
export class UpstreamConnection {
  readonly name: string;
  private readonly transport: MessageTransport & Partial<EraAware>;
  private readonly opts: ConnectionOptions;
  private readonly pending = new Map<JsonRpcId, Pending>();
  /** Gateway progress token → the pending upstream id it belongs to. */
  private readonly progress = new Map<string, JsonRpcId>();
  private nextId = 1;
  private closed = false;
  handshake: HandshakeResult | undefined;
  /**
   * The epoch (`toolsEpoch`) whose complete tools/list was last checked against the pins;
   * until it is the current one (never listed on this connection: a new process may serve
   * other definitions than the last; or a change announced since), a tools/call lists first.
   */
  reviewedEpoch = -1;
  /** How many times the upstream announced a change to its tools: a kept list is of one epoch. */
  toolsEpoch = 0;

  constructor(transport: MessageTransport & Partial<EraAware>, opts: ConnectionOptions) {
    this.name = opts.name;
    this.transport = transport;
    this.opts = opts;
    transport.onmessage = (m) => this.receive(m);
    transport.onclose = () => this.handleClose();
    transport.onerror = () => {};
    transport.onunanswered = (id) => {
      if (!this.pending.has(id)) return false;
      this.settle(id, unavailable(id, 'no answer'));
      return true;
    };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** True while any request (a call, a listen stream) waits on this upstream. */
  get busy(): boolean {
    return this.pending.size > 0;
  }

  get isolation(): Isolation {
    return this.opts.isolation ?? 'session';
  }

  /** The handshake in the era tried first, falling back to the other when the upstream does not offer it. */
  async open(client: ClientProfile): Promise<HandshakeResult> {
    await this.transport.start();
    const first = this.opts.knownEra ?? this.opts.clientEra ?? 'modern';
    // A server spawned just now may still be starting: the first probe waits the time of two calls.
    const patient = { timeoutMs: 2 * this.opts.timeoutMs };
    const refusals: unknown[] = [];
    const legacy = (o = {}) => this.initialize(client, o).catch((err: unknown) => void refusals.push(err));
    const modern = (o = {}) => this.discover(client, o);
    const handshake =
      first === 'legacy'
        ? ((await legacy(patient)) ?? (await modern()))
        : ((await modern(patient)) ?? (await legacy()));
    if (!handshake) throw refusals[0];
    this.handshake = handshake;
    return handshake;
  }

  /** Modern probe: `server/discover`. Undefined when the server does not speak the modern era. */
  private async discover(
    client: ClientProfile,
    opts: { timeoutMs?: number },
  ): Promise<HandshakeResult | undefined> {
    this.transport.setEra?.('modern', LATEST_MODERN);
    const res = await this.request('server/discover', { _meta: modernMeta(client, LATEST_MODERN) }, opts);
    const result = res.result;
    const versions =
      isObject(result) && Array.isArray(result.supportedVersions) ? result.supportedVersions : [];
    if (!versions.includes(LATEST_MODERN)) return undefined;
    return {
      era: 'modern',
      protocolVersion: LATEST_MODERN,
      capabilities: asObject(result?.capabilities),
      serverInfo: asObject(result?.serverInfo),
      ...(typeof result?.instructions === 'string' ? { instructions: result.instructions } : {}),
    };
  }

  private async initialize(client: ClientProfile, opts: { timeoutMs?: number }): Promise<HandshakeResult> {
    this.transport.setEra?.('legacy', LATEST_LEGACY);
    const params = {
      protocolVersion: LATEST_LEGACY,
      capabilities: client.capabilities,
      clientInfo: client.info,
    };
    const res = await this.request('initialize', params, opts);
    if (!isObject(res.result) || typeof res.result.protocolVersion !== 'string') {
      throw new UpstreamError('ERR_UPSTREAM_PROTOCOL', `${this.name}: initialize failed`, {
        detail: { error: res.error },
      });
    }
    const r = res.result;
    this.transport.setEra?.('legacy', r.protocolVersion as string);
    await this.transport.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    return {
      era: 'legacy',
      protocolVersion: r.protocolVersion as string,
      capabilities: asObject(r.capabilities),
      serverInfo: asObject(r.serverInfo),
      ...(typeof r.instructions === 'string' ? { instructions: r.instructions } : {}),
    };
  }

  /**
   * Sends a request and resolves with the upstream's response (an error
   * response on timeout or loss of the upstream; it never rejects for those).
   */
  async request(
    method: string,
    params: JsonObject | undefined,
    opts: RequestOptions = {},
  ): Promise<JsonRpcResponse> {
    return (await this.exchange(method, params, opts)).response;
  }

  /** As `request`, and says whether the upstream answered, may have acted unanswered, or never got it. */
  exchange(
    method: string,
    params: JsonObject | undefined,
    opts: RequestOptions = {},
  ): Promise<UpstreamReply> {
    if (this.closed) return Promise.resolve(unavailable(null, 'closed', false));
    // A cancel that landed before this send (say, during the decision's fsync) must stop it: an
    // 'abort' listener added to an already-aborted signal never fires.
    if (opts.signal?.aborted)
      return Promise.resolve({ response: cancelledUnsent(null), outcome: 'not-sent' });
    const id = this.nextId++;
    const { params: sent, progressToken } = this.rewriteProgress(id, params);
    const message: JsonRpcRequest = { jsonrpc: '2.0', id, method, ...(sent ? { params: sent } : {}) };
    return new Promise<UpstreamReply>((resolve) => {
      // timeoutMs 0: a stream that lives until cancelled (subscriptions/listen).
      const timeoutMs = opts.timeoutMs ?? this.opts.timeoutMs;
      const timer =
        timeoutMs === 0
          ? undefined
          : setTimeout(() => {
              this.settle(id, unavailable(id, 'timeout'));
              void this.notify('notifications/cancelled', { requestId: id, reason: 'gateway timeout' });
            }, timeoutMs);
      this.pending.set(id, {
        resolve,
        sink: opts.sink,
        timer,
        ...(progressToken ? { progressToken } : {}),
        ...(opts.clientId === undefined ? {} : { clientId: opts.clientId }),
      });
      opts.signal?.addEventListener('abort', () => this.cancel(id), { once: true });
      const sendOpts = opts.headers ? { headers: opts.headers } : undefined;
      this.transport.send(message, sendOpts).catch(() => this.settle(id, unavailable(id, 'send failed')));
    });
  }

  async notify(method: string, params?: JsonObject): Promise<void> {
    if (this.closed) return;
    await this.transport.send({ jsonrpc: '2.0', method, ...(params ? { params } : {}) }).catch(() => {});
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.transport.close().catch(() => {});
    this.failAll('closed');
  }

  private cancel(id: JsonRpcId): void {
    if (!this.pending.has(id)) return;
    void this.notify('notifications/cancelled', { requestId: id, reason: 'client cancelled' });
    this.settle(id, cancelled(id));
  }

  /** Client progress tokens are replaced by ours, so tokens from different callers never meet upstream. */
  private rewriteProgress(
    id: JsonRpcId,
    params: JsonObject | undefined,
  ): { params: JsonObject | undefined; progressToken?: string | number } {
    const meta = params?._meta;
    if (!isObject(meta) || !('progressToken' in meta)) return { params };
    const original = meta.progressToken as string | number;
    const ours = `${this.name}-p${id}`;
    this.progress.set(ours, id);
    return { params: { ...params, _meta: { ...meta, progressToken: ours } }, progressToken: original };
  }

  private settle(id: JsonRpcId, reply: UpstreamReply): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (p.progressToken !== undefined) this.progress.delete(`${this.name}-p${id}`);
    p.resolve(reply);
  }

  private receive(message: JsonRpcMessage): void {
    // What goes on to a client unread is cleaned here; responses are inspected (and cleaned) by who asked.
    if (isRequest(message)) return void this.relayServerRequest(stripInvisible(message));
    if (isNotification(message)) {
      if (message.method === 'notifications/tools/list_changed') this.toolsEpoch++;
      this.relayNotification(stripInvisible(message));
      return;
    }
    const id = message.id;
    if (id !== null && this.pending.has(id))
      this.settle(id, { response: message as JsonRpcResponse, outcome: 'answered' });
  }

  private relayNotification(message: JsonRpcNotification): void {
    const token = isObject(message.params) ? message.params.progressToken : undefined;
    if (message.method === 'notifications/progress' && typeof token === 'string') {
      const upstreamId = this.progress.get(token);
      const p = upstreamId === undefined ? undefined : this.pending.get(upstreamId);
      if (!p || p.progressToken === undefined) return;
      p.sink?.notify({ ...message, params: { ...message.params, progressToken: p.progressToken } });
      return;
    }
    if (this.relaySubscription(message)) return;
    const latest = this.isolation === 'shared' ? undefined : this.latestSink();
    (latest ?? this.opts.unrelated)?.notify(message);
  }

  /** `subscriptions/listen` events go to the stream of the listen request they name, under the client's id. */
  private relaySubscription(message: JsonRpcNotification): boolean {
    const meta =
      isObject(message.params) && isObject(message.params._meta) ? message.params._meta : undefined;
    const subId = meta?.[SUBSCRIPTION_ID];
    if (subId === undefined || (typeof subId !== 'string' && typeof subId !== 'number')) return false;
    const p = this.subscriber(subId);
    if (!p?.sink) return true; // a subscription nobody listens to any more
    const params = { ...message.params, _meta: { ...meta, [SUBSCRIPTION_ID]: p.clientId ?? subId } };
    p.sink.notify({ ...message, params });
    return true;
  }

  /** The listen a subscription id names: ours are numbers, which some servers echo back as strings. */
  private subscriber(subId: string | number): Pending | undefined {
    const exact = this.pending.get(subId);
    if (exact || typeof subId === 'number') return exact;
    return String(Number(subId)) === subId ? this.pending.get(Number(subId)) : undefined;
  }

  private async relayServerRequest(message: JsonRpcRequest): Promise<void> {
    if (message.method === 'ping') {
      await this.transport.send({ jsonrpc: '2.0', id: message.id, result: {} }).catch(() => {});
      return;
    }
    const sink = (this.isolation === 'session' ? this.latestSink() : undefined) ?? this.opts.unrelated;
    const reply = sink
      ? await sink.request(message).catch(() => undefined)
      : errorResponse(message.id, { code: JSONRPC.METHOD_NOT_FOUND, message: 'No client to relay to' });
    const response =
      reply ?? errorResponse(message.id, { code: JSONRPC.INTERNAL_ERROR, message: 'Client failed' });
    await this.transport.send({ ...response, id: message.id }).catch(() => {});
  }

  /** Server-to-client traffic without a request id belongs to the newest call in flight. */
  private latestSink(): RelatedSink | undefined {
    let last: RelatedSink | undefined;
    for (const p of this.pending.values()) if (p.sink) last = p.sink;
    return last;
  }

  private handleClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.failAll('upstream exited');
    this.opts.onClose?.();
  }

  private failAll(why: string): void {
    for (const id of [...this.pending.keys()]) this.settle(id, unavailable(id, why));
  }
}

export const SUBSCRIPTION_ID = 'io.modelcontextprotocol/subscriptionId';

export function modernMeta(client: ClientProfile, version: string): JsonObject {
  return {
    [META.protocolVersion]: version,
    [META.clientCapabilities]: client.capabilities,
    [META.clientInfo]: client.info,
  };
}

export const GATEWAY_CLIENT: ClientProfile = { capabilities: {}, info: { ...GATEWAY_INFO } };

const asObject = (v: unknown): JsonObject => (isObject(v) ? v : {});

const cancelledError = { code: JSONRPC.INTERNAL_ERROR, message: 'Request cancelled' };

/** The answer to a call its client cancelled while the upstream had it. */
const cancelled = (id: JsonRpcId): UpstreamReply => ({
  response: errorResponse(id, cancelledError),
  outcome: 'no-answer',
});

/** The answer to a call cancelled before it was sent (or a retry not sent). */
export const cancelledUnsent = (id: JsonRpcId | null): JsonRpcResponse => errorResponse(id, cancelledError);

function unavailable(id: JsonRpcId | null, why: string, sent = true): UpstreamReply {
  const response = errorResponse(id, {
    code: JSONRPC.UPSTREAM_UNAVAILABLE,
    message: why === 'timeout' ? 'Upstream timed out' : 'Upstream unavailable',
  });
  return { response, outcome: sent ? 'no-answer' : 'not-sent' };
}
