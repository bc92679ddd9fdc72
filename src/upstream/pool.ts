import type { InstanceCredentials, InstanceEnd } from '../credentials/instance.ts';
import { JSONRPC, overCapacity, UpstreamError } from '../errors.ts';
import { errorResponse, type JsonRpcNotification } from '../jsonrpc.ts';
import type { Logger } from '../observability/log.ts';
import type { Era } from '../protocol/versions.ts';
import { SessionQuota } from './capacity.ts';
import type { Isolation, Limits } from './config.ts';
import { type ClientProfile, GATEWAY_CLIENT, type RelatedSink, UpstreamConnection } from './connection.ts';
import { InstanceLease } from './instance-lease.ts';
import type { InstanceHolder } from './start-record.ts';
import type { MessageTransport } from './transport.ts';

export interface UpstreamSpec {
  name: string;
  /** Tool/prompt name prefix; "" when unprefixed. */
  prefix: string;
  timeoutMs: number;
  /** How long a connection's tools/list answer is reused (0: never), unless the upstream announces a change. */
  toolListCacheMs: number;
  restart: { initialDelayMs: number; maxDelayMs: number };
  isolation: Isolation;
  /** Mints the credential each instance is started with (a database role), when the upstream's config names one. */
  credentials?: InstanceCredentials;
  /**
   * Spawns or connects one instance for `holder`; may refuse (a stdio upstream that fails its server pin).
   * `credential`: the variables minted for this one instance, which only its process receives.
   */
  createTransport(
    holder: InstanceHolder,
    start?: { credential?: Readonly<Record<string, string>> },
  ): MessageTransport | Promise<MessageTransport>;
}

/** Who asks the pool for an upstream instance. */
export interface PoolClient {
  /** The downstream session's key. */
  key: string;
  principal: string;
  /** A legacy session holds what it uses until it ends; a stateless call holds nothing. */
  holds: boolean;
  client: ClientProfile;
  /** Its era: its upstream is reached in that era where the upstream offers it. */
  era: Era;
  /** Where this caller gets what the instance sends unprompted (list changes, logging). */
  unrelated: RelatedSink;
}

interface Health {
  failures: number;
  retryAt: number;
}

/** One running copy of an upstream and who it serves. */
interface Instance {
  readonly id: string;
  readonly name: string;
  /** '' for a shared instance: it counts against no one caller. */
  readonly principal: string;
  readonly isolation: Isolation;
  opening: Promise<UpstreamConnection>;
  conn: UpstreamConnection | undefined;
  /** Legacy sessions using it; while any does, it is never reaped. */
  readonly holders: Set<string>;
  readonly sinks: Map<string, RelatedSink>;
  lastUsed: number;
  /** The credential it was started with, revoked when it ends. */
  readonly lease: InstanceLease | undefined;
}

/** What a shared instance may announce to every caller: nothing that could carry another caller's data. */
const SHARED_NOTIFICATIONS: ReadonlySet<string> = new Set([
  'notifications/tools/list_changed',
  'notifications/prompts/list_changed',
  'notifications/resources/list_changed',
]);

/**
 * Running upstream instances, keyed by the upstream's isolation: one for
 * everyone (`shared`), one per caller identity (`principal`), or one per legacy
 * session (`session`; a stateless call has no session, so it gets its
 * principal's). Sessions and instances are capped per caller and in total;
 * over a cap a request is refused (ERR_CAPACITY) after idle instances are
 * reclaimed, never queued or spawned anyway. Instances no session holds are
 * closed once idle. Each client is paired with an upstream
 * instance of its own era where the upstream offers it; the era an upstream
 * answered in is remembered per principal and client era, never shared.
 */
export class UpstreamPool {
  private readonly specs: ReadonlyMap<string, UpstreamSpec>;
  private readonly instances = new Map<string, Instance>();
  private readonly eras = new Map<string, Era>();
  private readonly health = new Map<string, Health>();
  private readonly sessions: SessionQuota;
  private readonly limits: Limits;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly reaper: NodeJS.Timeout;

  constructor(specs: readonly UpstreamSpec[], log: Logger, opts: { limits: Limits; now?: () => number }) {
    this.specs = new Map(specs.map((s) => [s.name, s]));
    this.log = log;
    this.limits = opts.limits;
    this.now = opts.now ?? Date.now;
    this.sessions = new SessionQuota(opts.limits.sessionsPerPrincipal);
    this.reaper = setInterval(() => void this.sweep(), Math.min(opts.limits.instanceIdleMs, 60_000));
    this.reaper.unref();
  }

  get names(): string[] {
    return [...this.specs.keys()];
  }

  spec(name: string): UpstreamSpec | undefined {
    return this.specs.get(name);
  }

  /** Instances running or starting: all of them, or those counted against `principal`. */
  live(principal?: string): number {
    if (principal === undefined) return this.instances.size;
    return [...this.instances.values()].filter((i) => i.principal === principal).length;
  }

  /** Counts a legacy session against its caller's cap (ERR_CAPACITY over it) until `release`. */
  admitSession(key: string, principal: string): void {
    this.sessions.admit(key, principal);
  }

  /** The instance of upstream `name` that serves `who`, started (and handshaken) on first use. */
  get(who: PoolClient, name: string): Promise<UpstreamConnection> {
    const spec = this.specs.get(name);
    const target = this.instanceId(who, name);
    if (!spec || !target) return Promise.reject(new Error(`unknown upstream ${name}`));
    const { id, isolation } = target;
    let inst = this.instances.get(id);
    try {
      inst ??= this.start(id, spec, isolation, who);
    } catch (err) {
      return Promise.reject(err);
    }
    inst.lastUsed = this.now();
    if (who.holds) inst.holders.add(who.key);
    inst.sinks.set(who.key, who.unrelated);
    return inst.opening;
  }

  /**
   * Refuses (ERR_CAPACITY) before anything starts when `who` needs more new
   * instances of `names` than the caps leave room for, idle ones reclaimed:
   * a caller refused halfway would have started processes for nothing.
   */
  reserve(who: PoolClient, names: readonly string[]): void {
    const wanted = new Map(names.map((name) => this.instanceId(who, name)).map((p) => [p?.id, p]));
    const missing = [...wanted.values()].filter(
      (p): p is { id: string; isolation: Isolation } => p !== undefined && !this.instances.has(p.id),
    );
    const mine = missing.filter((p) => p.isolation !== 'shared').length;
    const idle = (match: (i: Instance) => boolean) =>
      [...this.instances.values()].filter((i) => match(i) && isIdle(i)).length;
    const ownRoom =
      this.limits.instancesPerPrincipal -
      this.live(who.principal) +
      idle((i) => i.principal === who.principal);
    if (mine > ownRoom) throw overCapacity(`${who.principal} needs ${mine} more upstream instances`);
    const totalRoom = this.limits.instancesTotal - this.instances.size + idle(() => true);
    if (missing.length > totalRoom) throw overCapacity(`${missing.length} more upstream instances in total`);
  }

  private instanceId(who: PoolClient, name: string): { id: string; isolation: Isolation } | undefined {
    const spec = this.specs.get(name);
    if (!spec) return undefined;
    const isolation = spec.isolation === 'session' && !who.holds ? 'principal' : spec.isolation;
    const scope =
      isolation === 'shared' ? 'shared' : isolation === 'principal' ? `p:${who.principal}` : `s:${who.key}`;
    // One instance per client era, so each client is paired with an upstream session of its own era.
    return { id: `${scope}\u0000${name}\u0000${who.era}`, isolation };
  }

  private start(id: string, spec: UpstreamSpec, isolation: Isolation, who: PoolClient): Instance {
    const principal = isolation === 'shared' ? '' : who.principal;
    const room = this.makeRoom(principal);
    // Only a session's own instance learns what its client can do; one serving many speaks for none of them.
    const client = isolation === 'session' ? who.client : GATEWAY_CLIENT;
    const inst: Instance = {
      id,
      name: spec.name,
      principal,
      isolation,
      opening: room.then(() => this.open(inst, who, { ...client, era: who.era })),
      conn: undefined,
      holders: new Set(),
      sinks: new Map(),
      lastUsed: this.now(),
      lease: spec.credentials ? new InstanceLease(spec.credentials, this.log) : undefined,
    };
    inst.opening.then(
      (conn) => {
        inst.conn = conn;
      },
      () => {
        if (this.instances.get(id) === inst) this.instances.delete(id);
      },
    );
    this.instances.set(id, inst);
    return inst;
  }

  /**
   * Refuses a new instance over a cap unless an idle one can be reclaimed; the
   * returned promise settles once the reclaimed instance is closed, so the caps
   * bound running processes, not just entries.
   */
  private makeRoom(principal: string): Promise<void> {
    const closing: Promise<void>[] = [];
    if (principal !== '' && this.live(principal) >= this.limits.instancesPerPrincipal) {
      const idle = this.oldestIdle((i) => i.principal === principal);
      if (!idle)
        throw overCapacity(`${this.limits.instancesPerPrincipal} upstream instances serve ${principal}`);
      closing.push(this.retire(idle));
    }
    if (this.instances.size >= this.limits.instancesTotal) {
      const idle = this.oldestIdle(() => true);
      if (!idle) throw overCapacity(`${this.limits.instancesTotal} upstream instances in total`);
      closing.push(this.retire(idle));
    }
    return Promise.all(closing).then(() => {});
  }

  private oldestIdle(match: (i: Instance) => boolean): Instance | undefined {
    let oldest: Instance | undefined;
    for (const inst of this.instances.values()) {
      if (!match(inst) || !isIdle(inst)) continue;
      if (!oldest || inst.lastUsed < oldest.lastUsed) oldest = inst;
    }
    return oldest;
  }

  /** Closes the instance, then takes back the credential it was started with. */
  private retire(inst: Instance, why: InstanceEnd = 'instance-end'): Promise<void> {
    if (this.instances.get(inst.id) === inst) this.instances.delete(inst.id);
    this.log.debug('upstream instance closed', { upstream: inst.name, isolation: inst.isolation });
    return inst.opening
      .then((c) => c.close())
      .catch(() => {})
      .then(() => inst.lease?.revoke(why));
  }

  /**
   * Closes every instance idle (no holder, nothing in flight) for
   * `instanceIdleMs` as of `at`, and every one whose credential has expired
   * by then, busy or not: the next call starts a new one with a new credential.
   */
  async sweep(at: number = this.now()): Promise<number> {
    const cutoff = at - this.limits.instanceIdleMs;
    const stale = [...this.instances.values()].filter(
      (i) => (isIdle(i) && i.lastUsed <= cutoff) || i.lease?.expiredBy(at),
    );
    await Promise.all(stale.map((i) => this.retire(i, i.lease?.expiredBy(at) ? 'expired' : 'instance-end')));
    return stale.length;
  }

  /** The instance's credential, minted for whom it serves; a lease that runs out closes the instance. */
  private async credentialFor(inst: Instance, who: string, sessionKey: string) {
    if (!inst.lease) return undefined;
    const holder = {
      upstream: inst.name,
      principal: who,
      ...(inst.isolation === 'session' ? { sessionKey } : {}),
    };
    return inst.lease.issue(holder, {
      now: this.now,
      onExpire: () => {
        if (this.instances.get(inst.id) !== inst) return;
        this.log.info('upstream credential expired: instance closed', { upstream: inst.name });
        void this.retire(inst, 'expired');
      },
    });
  }

  private async open(
    inst: Instance,
    who: PoolClient,
    client: ClientProfile & { era: Era },
  ): Promise<UpstreamConnection> {
    const name = inst.name;
    const spec = this.specs.get(name)!;
    await this.waitForBackoff(name, spec.timeoutMs);
    const eraKey = `${who.principal}\u0000${name}\u0000${client.era}`;
    const knownEra = this.eras.get(eraKey);
    const holder: InstanceHolder = {
      isolation: inst.isolation,
      principal: inst.principal,
      session: inst.isolation === 'session' ? who.key : '',
    };
    // Minted before the process starts: no credential, no process (ERR_CREDENTIAL_UNAVAILABLE reaches the caller).
    const credential = await this.credentialFor(inst, who.principal, who.key);
    let transport: MessageTransport;
    try {
      // A refused start (server pinning) is the caller's answer as is; it is not a crash to back off from.
      transport = await spec.createTransport(holder, credential ? { credential } : {});
    } catch (err) {
      await inst.lease?.revoke();
      throw err;
    }
    const conn = new UpstreamConnection(transport, {
      name,
      timeoutMs: spec.timeoutMs,
      isolation: inst.isolation,
      unrelated: this.fanOut(inst),
      clientEra: client.era,
      ...(knownEra ? { knownEra } : {}),
      onClose: () => this.lost(inst),
    });
    try {
      const hs = await conn.open(client);
      this.eras.set(eraKey, hs.era);
      this.health.delete(name);
      this.log.debug('upstream connected', { upstream: name, era: hs.era, version: hs.protocolVersion });
      return conn;
    } catch (err) {
      await conn.close();
      await inst.lease?.revoke();
      this.recordFailure(name, spec);
      throw new UpstreamError('ERR_UPSTREAM_UNAVAILABLE', `${name}: cannot connect: ${String(err)}`, {
        cause: err,
      });
    }
  }

  /**
   * What an instance sends unprompted reaches every caller it serves; a request
   * of its own reaches a client only from a session's own instance (one serving
   * many was told of no client capabilities, and could not say whose it is).
   */
  private fanOut(inst: Instance): RelatedSink {
    return {
      notify: (message: JsonRpcNotification) => {
        if (inst.isolation === 'shared' && !SHARED_NOTIFICATIONS.has(message.method)) return;
        for (const sink of inst.sinks.values()) sink.notify(message);
      },
      request: (message, signal) => {
        const own = inst.isolation === 'session' ? [...inst.sinks.values()][0] : undefined;
        if (own) return own.request(message, signal);
        return Promise.resolve(
          errorResponse(message.id, { code: JSONRPC.METHOD_NOT_FOUND, message: 'Client takes no requests' }),
        );
      },
    };
  }

  private lost(inst: Instance): void {
    if (this.instances.get(inst.id) === inst) this.instances.delete(inst.id);
    void inst.lease?.revoke();
    const spec = this.specs.get(inst.name);
    if (spec) this.recordFailure(inst.name, spec);
    this.log.warn('upstream connection lost; it will be restarted on next use', { upstream: inst.name });
  }

  private recordFailure(name: string, spec: UpstreamSpec): void {
    const failures = (this.health.get(name)?.failures ?? 0) + 1;
    const delay = Math.min(spec.restart.initialDelayMs * 2 ** (failures - 1), spec.restart.maxDelayMs);
    this.health.set(name, { failures, retryAt: this.now() + delay });
  }

  private async waitForBackoff(name: string, timeoutMs: number): Promise<void> {
    const h = this.health.get(name);
    if (!h) return;
    const wait = h.retryAt - this.now();
    if (wait <= 0) return;
    if (wait > timeoutMs) {
      throw new UpstreamError('ERR_UPSTREAM_UNAVAILABLE', `${name}: restarting, backoff ${wait} ms`);
    }
    await new Promise((r) => setTimeout(r, wait));
  }

  /**
   * A session ended: its place under the session cap is freed, its own
   * instances are closed, and those it shared start their idle time.
   */
  async release(key: string): Promise<void> {
    this.sessions.release(key);
    const closing: Promise<void>[] = [];
    for (const inst of [...this.instances.values()]) {
      inst.sinks.delete(key);
      if (!inst.holders.delete(key)) continue;
      if (inst.isolation === 'session') closing.push(this.retire(inst, 'session-end'));
      else if (inst.holders.size === 0) inst.lastUsed = this.now();
    }
    await Promise.all(closing);
  }

  async closeAll(): Promise<void> {
    clearInterval(this.reaper);
    const all = [...this.instances.values()];
    this.instances.clear();
    await Promise.all(
      all.map((i) =>
        i.opening
          .then((c) => c.close())
          .catch(() => {})
          .then(() => i.lease?.revoke('shutdown')),
      ),
    );
  }
}

/** No session holds it, it is running, and nothing is in flight on it. */
const isIdle = (inst: Instance): boolean =>
  inst.holders.size === 0 && inst.conn !== undefined && !inst.conn.isClosed && !inst.conn.busy;
