import { JSONRPC, PortcullisError, ProtocolError, UpstreamError, unknownTarget } from '../errors.ts';
import { deepFreeze, isDeepFrozen } from '../freeze.ts';
import type { Principal } from '../identity/principal.ts';
import { errorResponse, isObject, type JsonObject } from '../jsonrpc.ts';
import type { Logger } from '../observability/log.ts';
import { hasInvisible, stripInvisible } from '../pinning/invisible.ts';
import type { ToolPins } from '../pinning/tool-pins.ts';
import { type ListMethod, listSpec } from '../protocol/methods.ts';
import { GATEWAY_INFO, isLegacyVersion, LATEST_LEGACY, LATEST_MODERN, META } from '../protocol/versions.ts';
import type { DownstreamSession } from '../session.ts';
import { modernMeta, type RelatedSink, type UpstreamConnection } from './connection.ts';
import { KeptToolLists } from './kept-tool-lists.ts';
import { exposeName, splitName } from './naming.ts';
import type { PoolClient, UpstreamPool } from './pool.ts';
import { revocationGate } from './revocation-gate.ts';

const MAX_PAGES = 100;

/** One listed item (names already exposed) and the upstream that listed it. */
export interface ListedItem {
  readonly item: JsonObject;
  readonly upstream: string;
}

/** What the aggregator cannot decide itself. Both are required: nothing here defaults to allowing. */
export interface AggregatorDeps {
  /** Expiry and revocation of a caller, again: a stream that outlives its call relays only while this passes. */
  readonly recheck: (principal: Principal) => Promise<void>;
  /** Told of every upstream's tools each time they are listed (policy learns tool definitions there). */
  readonly toolsListed: (items: readonly ListedItem[]) => void;
  /** Tool pinning: which listed tools match their pins, and which are quarantined (hidden, refused). */
  readonly pins: Pick<ToolPins, 'review' | 'isQuarantined'>;
  /** The clock a kept tools/list answer is aged by. */
  readonly now: () => number;
}

/** A list's result as the client sees it, from the items it may see. */
export const listResult = (method: ListMethod, items: readonly JsonObject[]): JsonObject => ({
  [listSpec(method).key]: [...items],
});

/** What names a listed item: a tool's or prompt's exposed name, a resource's URI, a template's URI template. */
export const listedId = (method: ListMethod, item: JsonObject): unknown => item[listSpec(method).idField];

interface ResourceOwners {
  exact: Map<string, string>;
  templates: { prefix: string; upstream: string }[];
}

/**
 * Presents several upstreams as one server: merged capabilities, prefixed tool
 * and prompt names, resource URIs routed to the upstream that listed them.
 */
export class Aggregator {
  private readonly pool: UpstreamPool;
  readonly log: Logger;
  private readonly prefixes: ReadonlySet<string>;
  private readonly byPrefix: ReadonlyMap<string, string>;
  private readonly owners = new Map<string, ResourceOwners>();
  private readonly listeners = new Map<string, Set<RelatedSink>>();
  private readonly deps: AggregatorDeps;
  /** Exposed tool name → its input schema, per session key, from the last tools/list. */
  private readonly schemas = new Map<string, Map<string, unknown>>();
  /** Each connection's kept tools/list answers. */
  private readonly toolLists = new WeakMap<UpstreamConnection, KeptToolLists>();
  /** A kept upstream item → the item as listed to clients (cleaned, renamed, deep-frozen): made once. */
  private readonly exposedItems = new WeakMap<JsonObject, JsonObject>();

  constructor(pool: UpstreamPool, log: Logger, deps: AggregatorDeps) {
    this.pool = pool;
    this.log = log;
    this.deps = deps;
    const specs = pool.names.map((n) => pool.spec(n)!);
    this.prefixes = new Set(specs.map((s) => s.prefix));
    this.byPrefix = new Map(specs.map((s) => [s.prefix, s.name]));
  }

  async connection(session: DownstreamSession, name: string): Promise<UpstreamConnection> {
    return this.pool.get(this.poolClient(session), name);
  }

  /** A call still running when its session closed would hold an instance no release ever frees. */
  private poolClient(session: DownstreamSession): PoolClient {
    if (session.closed) {
      throw new UpstreamError('ERR_SESSION_CLOSED', `session ${session.id} closed`);
    }
    const own = session.unrelated;
    const unrelated = own ? this.gate(session, own, () => closeStream(own)) : this.broadcaster(session.key);
    return {
      key: session.key,
      principal: session.principal.id,
      holds: session.era === 'legacy',
      client: session.client,
      era: session.era,
      unrelated,
    };
  }

  /** A legacy session counts against its caller's session cap from `initialize` until it closes. */
  admit(session: DownstreamSession): void {
    if (session.era === 'legacy') this.pool.admitSession(session.key, session.principal.id);
  }

  /**
   * A stream that outlives the call that opened it (a legacy GET stream, a
   * listen) relays upstream messages only while its caller still passes this.
   */
  gate(session: DownstreamSession, sink: RelatedSink, onRefused: () => void): RelatedSink {
    return revocationGate(sink, () => this.deps.recheck(session.principal), onRefused);
  }

  /**
   * Stateless clients share upstream connections per key; what those upstreams
   * announce unprompted (list changes) goes to that key's open listen streams.
   */
  private broadcaster(key: string): RelatedSink {
    return {
      notify: (message) => {
        for (const sink of this.listeners.get(key) ?? []) sink.notify(message);
      },
      request: async (message) =>
        errorResponse(message.id, { code: JSONRPC.METHOD_NOT_FOUND, message: 'Client takes no requests' }),
    };
  }

  timeoutOf(upstream: string): number {
    return this.pool.spec(upstream)?.timeoutMs ?? 30_000;
  }

  /** Registers a listen stream for unprompted upstream notifications; returns its removal. */
  addListener(key: string, sink: RelatedSink): () => void {
    let set = this.listeners.get(key);
    if (!set) {
      set = new Set();
      this.listeners.set(key, set);
    }
    set.add(sink);
    return () => set.delete(sink);
  }

  /**
   * Every upstream this session can reach; one that is down is left out (and
   * logged), not fatal. A cap reached is: the caller is refused, not served a part.
   */
  async connections(session: DownstreamSession): Promise<UpstreamConnection[]> {
    const names = this.pool.names;
    const who = this.poolClient(session);
    this.pool.reserve(who, names);
    const settled = await Promise.allSettled(names.map((n) => this.pool.get(who, n)));
    const refused = settled.find((s) => s.status === 'rejected' && isCapacity(s.reason));
    if (refused?.status === 'rejected') throw refused.reason;
    const up: UpstreamConnection[] = [];
    settled.forEach((s, i) => {
      if (s.status === 'fulfilled') up.push(s.value);
      else this.log.warn('upstream unavailable', { upstream: names[i], err: String(s.reason) });
    });
    return up;
  }

  async capabilities(session: DownstreamSession): Promise<JsonObject> {
    const merged: Record<string, JsonObject> = {};
    for (const conn of await this.connections(session)) {
      for (const [cap, value] of Object.entries(conn.handshake?.capabilities ?? {})) {
        if (!['tools', 'prompts', 'resources', 'logging', 'completions'].includes(cap)) continue;
        merged[cap] = mergeFlags(merged[cap] ?? {}, isObject(value) ? value : {});
      }
    }
    return merged;
  }

  async initializeResult(session: DownstreamSession, requested: unknown): Promise<JsonObject> {
    const protocolVersion =
      typeof requested === 'string' && isLegacyVersion(requested) ? requested : LATEST_LEGACY;
    session.protocolVersion = protocolVersion;
    return {
      protocolVersion,
      capabilities: await this.capabilities(session),
      serverInfo: { ...GATEWAY_INFO },
    };
  }

  async discoverResult(session: DownstreamSession): Promise<JsonObject> {
    return {
      supportedVersions: [LATEST_MODERN],
      capabilities: await this.capabilities(session),
      _meta: { 'io.modelcontextprotocol/serverInfo': { ...GATEWAY_INFO } },
    };
  }

  /**
   * One page holding every upstream's items, unfiltered: the gateway hands out
   * no cursors of its own, and what a caller may see is the pipeline's to decide.
   */
  async list(
    session: DownstreamSession,
    method: ListMethod,
    params: JsonObject | undefined,
    sink: RelatedSink,
  ): Promise<ListedItem[]> {
    if (params?.cursor !== undefined) {
      throw new ProtocolError('ERR_INVALID_CURSOR', 'cursor not issued by this gateway');
    }
    const spec = listSpec(method);
    const conns = (await this.connections(session)).filter((c) => c.handshake?.capabilities[spec.capability]);
    const fetched = await Promise.all(conns.map((c) => this.listAll(c, session, method, params, sink)));
    const pages = fetched.map((f) => f.items);
    const shown = method === 'tools/list' ? await this.pinned(session, conns, pages) : pages;
    if (method === 'tools/list') markReviewed(conns, fetched, shown);
    const listed = this.merge(
      method,
      conns,
      shown.map((p) => p ?? []),
    );
    // Owners are learned from every item: a URI a token allows may come from a template it does not list.
    if (method === 'resources/list' || method === 'resources/templates/list')
      this.remember(session, method, listed);
    if (method === 'tools/list') {
      this.schemas.set(session.key, new Map(listed.map(({ item }) => [String(item.name), item.inputSchema])));
      this.deps.toolsListed(listed);
    }
    return listed;
  }

  /**
   * Every upstream's items under the names clients see. Items whose names collide are all
   * hidden (whichever came first could be a look-alike's), and so is an item whose name
   * held invisible characters: the name it would be listed under is not its own, so a
   * call by that name would reach another tool than the one listed.
   */
  private merge(
    method: ListMethod,
    conns: readonly UpstreamConnection[],
    pages: readonly (readonly JsonObject[])[],
  ) {
    const spec = listSpec(method);
    const candidates: ListedItem[] = [];
    conns.forEach((conn, i) => {
      const prefix = this.pool.spec(conn.name)!.prefix;
      for (const item of pages[i] ?? []) {
        if (spec.rename && hasInvisible(String(item.name))) {
          this.log.warn('item hidden: its name holds invisible characters', { method, upstream: conn.name });
          continue;
        }
        candidates.push({ item: this.exposed(item, prefix, spec.rename), upstream: conn.name });
      }
    });
    const owners = new Map<string, string[]>();
    for (const { item, upstream } of candidates) {
      const id = String(item[spec.idField]);
      const named = owners.get(id);
      if (named) named.push(upstream);
      else owners.set(id, [upstream]);
    }
    return candidates.filter(({ item }) => {
      const id = String(item[spec.idField]);
      const upstreams = owners.get(id)!;
      if (upstreams.length === 1) return true;
      this.log.warn('name collision: items hidden', { method, id, upstreams });
      return false;
    });
  }

  /**
   * An item as clients see it. Tag characters and bidi controls never leave the gateway (pins
   * and the scanner saw them first). An item of a kept listing is made once and deep-frozen,
   * so what later stages derive from it (policy's catalog, the signed form) is made once too.
   */
  private exposed(item: JsonObject, prefix: string, rename: boolean): JsonObject {
    const made = this.exposedItems.get(item);
    if (made) return made;
    const clean = stripInvisible(item);
    const out = rename ? { ...clean, name: exposeName(prefix, String(clean.name)) } : clean;
    if (!isDeepFrozen(item)) return out;
    this.exposedItems.set(item, deepFreeze(out === item ? item : out));
    return out;
  }

  /** Each upstream's tools that match their pins; a change or poisoning quarantines a tool (hidden). */
  private async pinned(
    session: DownstreamSession,
    conns: readonly UpstreamConnection[],
    pages: readonly (readonly JsonObject[])[],
  ): Promise<(readonly JsonObject[] | undefined)[]> {
    const listings = conns.map((c, i) => ({
      upstream: c.name,
      tools: pages[i] ?? [],
      instructions: c.handshake?.instructions,
    }));
    const shown = await this.deps.pins.review(listings, {
      session: session.key,
      principal: session.principal.id,
    });
    // An upstream missing from the answer could not be checked: undefined, nothing of it shown.
    return conns.map((c) => shown.get(c.name));
  }

  private async listAll(
    conn: UpstreamConnection,
    session: DownstreamSession,
    method: ListMethod,
    params: JsonObject | undefined,
    sink: RelatedSink,
  ): Promise<FetchedList> {
    const epoch = conn.toolsEpoch;
    if (method !== 'tools/list')
      return { ...(await this.listPages(conn, session, method, params, sink)), epoch };
    // Pins are checked on every list all the same; a kept answer only spares asking the upstream.
    const lists = this.keptLists(conn);
    const asked = this.upstreamParams(conn, session, params);
    const kept = lists.get(asked, epoch);
    if (kept) return { items: kept, complete: true, epoch };
    const fetch = lists.begin(asked, epoch);
    const { items, complete } = await this.listPages(conn, session, method, params, sink);
    lists.settle(fetch, conn.toolsEpoch, items, complete);
    return { items, complete, epoch };
  }

  private keptLists(conn: UpstreamConnection): KeptToolLists {
    let lists = this.toolLists.get(conn);
    if (!lists) {
      lists = new KeptToolLists(this.pool.spec(conn.name)?.toolListCacheMs ?? 0, this.deps.now);
      this.toolLists.set(conn, lists);
    }
    return lists;
  }

  private async listPages(
    conn: UpstreamConnection,
    session: DownstreamSession,
    method: ListMethod,
    params: JsonObject | undefined,
    sink: RelatedSink,
  ): Promise<{ items: JsonObject[]; complete: boolean }> {
    const items: JsonObject[] = [];
    let cursor: unknown;
    for (let page = 0; page < MAX_PAGES; page++) {
      const p = { ...(params ?? {}), ...(cursor === undefined ? {} : { cursor }) };
      const res = await conn.request(method, this.upstreamParams(conn, session, p), { sink });
      const result = res.result;
      if (!result) {
        this.log.warn('upstream list failed', { upstream: conn.name, method, error: res.error });
        return { items, complete: false };
      }
      const batch = result[listSpec(method).key];
      if (Array.isArray(batch)) items.push(...batch.filter(isObject));
      cursor = result.nextCursor;
      if (typeof cursor !== 'string' || cursor === '') return { items, complete: true };
    }
    return { items, complete: false };
  }

  private remember(session: DownstreamSession, method: ListMethod, listed: readonly ListedItem[]): void {
    const o = this.ownersOf(session);
    for (const { item, upstream } of listed) {
      if (method === 'resources/list' && typeof item.uri === 'string') {
        o.exact.set(item.uri, upstream);
      } else if (typeof item.uriTemplate === 'string') {
        const prefix = item.uriTemplate.split('{')[0] ?? '';
        o.templates = o.templates.filter((t) => t.prefix !== prefix);
        o.templates.push({ prefix, upstream });
      }
    }
  }

  private ownersOf(session: DownstreamSession): ResourceOwners {
    let o = this.owners.get(session.key);
    if (!o) {
      o = { exact: new Map(), templates: [] };
      this.owners.set(session.key, o);
    }
    return o;
  }

  forget(sessionKey: string): void {
    this.owners.delete(sessionKey);
    this.schemas.delete(sessionKey);
  }

  /** The input schema of an exposed tool, listing the tools first if this session has not. */
  async toolSchema(session: DownstreamSession, exposed: string, sink: RelatedSink): Promise<unknown> {
    if (!this.schemas.get(session.key)?.has(exposed)) await this.list(session, 'tools/list', undefined, sink);
    return this.schemas.get(session.key)?.get(exposed);
  }

  /** The upstream that owns a tool or prompt name, and its own name for it; a quarantined tool is unknown. */
  resolveName(kind: 'tool' | 'prompt', exposed: string): { upstream: string; original: string } {
    const split = splitName(exposed, this.prefixes);
    const upstream = split && this.byPrefix.get(split.prefix);
    if (!split || !upstream) throw unknownTarget(kind, exposed);
    if (kind === 'tool' && this.deps.pins.isQuarantined(upstream, split.name))
      throw unknownTarget(kind, exposed);
    return { upstream, original: split.name };
  }

  /**
   * The connection a tools/call goes out on. An upstream that announced a
   * change to its tools since it was last listed is listed (and its pins
   * checked) first, so a client calling from a cached list cannot reach a
   * definition no one reviewed; a tool quarantined by then is unknown.
   */
  async toolConnection(
    session: DownstreamSession,
    upstream: string,
    target: { exposed: string; original: string },
    sink: RelatedSink,
  ): Promise<UpstreamConnection> {
    const conn = await this.connection(session, upstream);
    if (conn.handshake?.capabilities.tools && conn.reviewedEpoch !== conn.toolsEpoch) {
      await this.list(session, 'tools/list', undefined, sink);
      // Its tools could not all be listed and checked (or changed again meanwhile): nothing is sent.
      if (conn.reviewedEpoch !== conn.toolsEpoch)
        throw new UpstreamError('ERR_UPSTREAM_UNAVAILABLE', `${upstream}: its tools could not be checked`);
    }
    if (this.deps.pins.isQuarantined(upstream, target.original)) throw unknownTarget('tool', target.exposed);
    return conn;
  }

  /** The upstream that listed a resource URI (or a template it matches). */
  async resolveResource(session: DownstreamSession, uri: string, sink: RelatedSink): Promise<string> {
    if (this.pool.names.length === 1) return this.pool.names[0]!;
    const found = this.lookup(session, uri);
    if (found) return found;
    await this.list(session, 'resources/list', undefined, sink);
    await this.list(session, 'resources/templates/list', undefined, sink);
    const after = this.lookup(session, uri);
    if (!after) throw unknownTarget('resource', uri);
    return after;
  }

  private lookup(session: DownstreamSession, uri: string): string | undefined {
    const o = this.owners.get(session.key);
    if (!o) return undefined;
    const exact = o.exact.get(uri);
    if (exact) return exact;
    const matches = o.templates.filter((t) => t.prefix.length > 0 && uri.startsWith(t.prefix));
    matches.sort((a, b) => b.prefix.length - a.prefix.length);
    return matches[0]?.upstream;
  }

  /** A modern upstream needs the per-request `_meta`; a legacy client never sends it, so we add it. */
  upstreamParams(
    conn: UpstreamConnection,
    session: DownstreamSession,
    params: JsonObject | undefined,
  ): JsonObject | undefined {
    if (conn.handshake?.era !== 'modern') return params;
    const meta = isObject(params?._meta) ? params._meta : {};
    if (META.protocolVersion in meta) return params;
    const envelope = modernMeta(session.client, LATEST_MODERN);
    if (session.logLevel) envelope[META.logLevel] = session.logLevel;
    return { ...(params ?? {}), _meta: { ...envelope, ...meta } };
  }
}

/** One upstream's list as fetched (or kept): its items, whether every page came, and the epoch it was asked in. */
interface FetchedList {
  readonly items: readonly JsonObject[];
  readonly complete: boolean;
  readonly epoch: number;
}

/** A connection whose complete list of its epoch was checked against the pins needs no list before a call. */
function markReviewed(
  conns: readonly UpstreamConnection[],
  fetched: readonly FetchedList[],
  shown: readonly (readonly JsonObject[] | undefined)[],
): void {
  conns.forEach((conn, i) => {
    const f = fetched[i]!;
    if (f.complete && shown[i] !== undefined && f.epoch > conn.reviewedEpoch) conn.reviewedEpoch = f.epoch;
  });
}

const isCapacity = (err: unknown): boolean => err instanceof PortcullisError && err.code === 'ERR_CAPACITY';

function mergeFlags(a: JsonObject, b: JsonObject): JsonObject {
  const out: JsonObject = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = v === true || out[k] === true ? true : (out[k] ?? v);
  return out;
}

const closeStream = (sink: RelatedSink): void => {
  const closable = sink as RelatedSink & { close?: () => void };
  closable.close?.();
};
