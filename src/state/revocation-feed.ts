import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { PortcullisError } from '../errors.ts';
import { RevocationSet } from './revocation-set.ts';
import { type Revocation, type RevocationSubject, STORE_TIMEOUT_MS } from './revocations.ts';

/**
 * One connection of a feed to the shared store, opened again after each loss:
 * PostgreSQL's LISTEN (postgres.ts), Redis's SUBSCRIBE (redis.ts).
 */
export interface FeedChannel {
  /** Connects and subscribes; from then on every message published reaches `onMessage`, in order, until `onLost`. */
  open(onMessage: (payload: string) => void, onLost: (err: Error) => void): Promise<void>;
  /** Every revocation in the store, read after subscribing. */
  load(): Promise<Revocation[]>;
  /** Publishes `payload` to every subscriber, this one included. */
  publish(payload: string): Promise<void>;
  /** Ends the connection (`polite`: as a client leaving; otherwise drops the socket). */
  close(polite: boolean): Promise<void>;
}

export interface FeedOptions {
  /** The clock freshness is judged by (ms since the epoch or any monotonic origin). */
  readonly now?: () => number;
  /** How often the channel is asked for a round trip. Default 250 ms. */
  readonly heartbeatMs?: number;
  /**
   * How old the last answered round trip may be before a check stops trusting
   * the set, and how long a round trip may take before the channel counts as
   * down. Default 1000 ms: the bound on how late a revocation reaches a replica.
   */
  readonly staleAfterMs?: number;
  /** Waits before reconnect attempt `attempt` (1, 2, …); rejects when `signal` aborts (the feed closed). */
  readonly backoff?: (attempt: number, signal: AbortSignal) => Promise<void>;
}

export interface FeedEvents {
  /** The set was (re)loaded from the table; checks are answered again. */
  live: [];
  /** The channel was lost or could not be opened; every check fails until `live`. */
  down: [Error];
  /** A revocation reached the set, by notification or from this replica's own `revoke`. */
  applied: [Revocation];
}

/** What a heartbeat's payload starts with; a revocation's is JSON. */
const PING = 'ping:';

type Phase = 'idle' | 'connecting' | 'live' | 'down' | 'closed';

/** 100 ms doubling to 5 s, ±20 %. */
const defaultBackoff = (attempt: number, signal: AbortSignal): Promise<void> =>
  sleep(Math.min(100 * 2 ** (attempt - 1), 5000) * (0.8 + Math.random() * 0.4), undefined, {
    signal,
    ref: false,
  });

/**
 * A replica's copy of the shared revocations, kept current by one dedicated
 * subscribed connection (not the pool): loaded with one query when the channel
 * opens, then amended by each message the writers publish. A check
 * is a lookup in memory; it trusts the copy only while the channel is up and
 * has carried back a heartbeat (a notification to itself, every
 * `heartbeatMs`) sent within the last `staleAfterMs`: notifications arrive in
 * commit order, so every revocation committed before that heartbeat is in the
 * copy. Otherwise it throws `ERR_STATE_UNAVAILABLE`: fail closed. A lost channel
 * reconnects with backoff and reloads the whole table before it answers again,
 * so revocations made while it was down are not missed.
 */
export class RevocationFeed extends EventEmitter<FeedEvents> {
  readonly #openChannel: () => FeedChannel;
  readonly #now: () => number;
  readonly #heartbeatMs: number;
  readonly #staleAfterMs: number;
  readonly #backoff: NonNullable<FeedOptions['backoff']>;
  readonly #stop = new AbortController();
  #set = new RevocationSet();
  /** Set while a load runs: notifications that arrive meanwhile, applied on top of what it read. */
  #pending: Revocation[] | undefined;
  #reloadAgain = false;
  #phase: Phase = 'idle';
  #everLive = false;
  #channel: FeedChannel | undefined;
  /** When the last answered round trip began. */
  #confirmedAt = Number.NEGATIVE_INFINITY;
  #beat: Promise<void> | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #first: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  /** Tells this feed's heartbeats from other replicas'. */
  readonly #id = randomBytes(6).toString('hex');
  #pings = 0;
  #ping: { token: string; heard: () => void } | undefined;

  constructor(openChannel: () => FeedChannel, options: FeedOptions = {}) {
    super();
    this.#openChannel = openChannel;
    this.#now = options.now ?? Date.now;
    this.#heartbeatMs = options.heartbeatMs ?? 250;
    this.#staleAfterMs = options.staleAfterMs ?? 1000;
    this.#backoff = options.backoff ?? defaultBackoff;
  }

  /** Opens the channel (once); resolves when the set is first loaded, rejects if that first attempt fails. */
  start(): Promise<void> {
    this.#first ??= this.#connect().then(
      () => void this.#supervise(),
      (err: unknown) => {
        void this.#supervise();
        throw unavailable('cannot open the revocation channel', err);
      },
    );
    return this.#first;
  }

  /** The earliest revocation matching the subject; throws `ERR_STATE_UNAVAILABLE` when the set cannot be trusted. */
  async find(subject: RevocationSubject): Promise<Revocation | undefined> {
    if (!this.#trusted()) await this.#settle();
    return this.#set.find(subject);
  }

  /** Resolves once every revocation committed before the call is in the set; rejects if that cannot be confirmed. */
  async sync(): Promise<void> {
    if (this.#phase === 'idle' || (this.#phase === 'connecting' && !this.#everLive)) await this.start();
    else {
      // A round trip begun before the call says nothing about commits made since.
      await this.#beat?.catch(() => {});
      await this.#roundTrip().catch((err: unknown) => {
        throw unavailable('the revocation channel did not answer', err);
      });
    }
    if (!this.#trusted()) throw unavailable(`the revocation channel is ${this.#phase}`);
  }

  /** Adds a revocation this replica just committed, so its own checks see it before the notification. */
  apply(r: Revocation): void {
    this.#set.add(r);
    this.#pending?.push(r);
    this.emit('applied', r);
  }

  /** Whether the set holds this revocation (whatever the channel's state). */
  holds(kind: Revocation['kind'], value: string): boolean {
    return this.#set.has(kind, value);
  }

  async close(): Promise<void> {
    this.#phase = 'closed';
    this.#stop.abort();
    this.#stopHeartbeat();
    this.#wake?.();
    const channel = this.#channel;
    this.#channel = undefined;
    await channel?.close(true);
  }

  #trusted(): boolean {
    return this.#phase === 'live' && this.#now() - this.#confirmedAt <= this.#staleAfterMs;
  }

  /** The first check waits for the first load; a stale set for one round trip; a lost channel fails at once. */
  async #settle(): Promise<void> {
    if (this.#phase === 'idle' || (this.#phase === 'connecting' && !this.#everLive)) await this.start();
    else if (this.#phase === 'live')
      await this.#roundTrip().catch((err: unknown) => {
        throw unavailable('the revocation channel did not answer', err);
      });
    if (!this.#trusted()) throw unavailable(`the revocation channel is ${this.#phase}`);
  }

  /** Reconnects whenever the channel is lost, until closed. */
  async #supervise(): Promise<void> {
    let attempt = 0;
    while (this.#phase !== 'closed') {
      if (this.#phase === 'live' || this.#phase === 'connecting') {
        attempt = 0;
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        continue;
      }
      try {
        await this.#backoff(++attempt, this.#stop.signal);
      } catch {
        return;
      }
      if (!this.#stop.signal.aborted) await this.#connect().catch(() => {});
    }
  }

  /** One connection: subscribed first, then the load, so nothing committed in between is missed. */
  async #connect(): Promise<void> {
    this.#phase = 'connecting';
    const channel = this.#openChannel();
    this.#channel = channel;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new Error(`timed out: the revocation channel did not open within ${STORE_TIMEOUT_MS} ms`)),
        STORE_TIMEOUT_MS,
      );
    });
    try {
      const opening = channel.open(
        (payload) => this.#notified(channel, payload),
        (err) => this.#lost(channel, err),
      );
      await Promise.race([opening.then(() => this.#load(channel)), bound]);
    } catch (err) {
      this.#lost(channel, err);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reads the whole table into a new set; checks fail meanwhile. */
  async #load(channel: FeedChannel): Promise<void> {
    this.#phase = 'connecting';
    this.#stopHeartbeat();
    this.#pending = [];
    const began = this.#now();
    const rows = await channel.load();
    if (channel !== this.#channel) throw new Error('the revocation channel was lost while loading');
    const set = new RevocationSet();
    for (const r of rows) set.add(r);
    for (const r of this.#pending) set.add(r);
    this.#pending = undefined;
    this.#set = set;
    if (this.#reloadAgain) {
      this.#reloadAgain = false;
      return this.#load(channel);
    }
    this.#confirmedAt = began;
    this.#phase = 'live';
    this.#everLive = true;
    this.#heartbeat = setInterval(() => void this.#roundTrip().catch(() => {}), this.#heartbeatMs);
    this.#heartbeat.unref();
    this.emit('live');
  }

  #notified(channel: FeedChannel, payload: string): void {
    if (channel !== this.#channel) return;
    if (payload.startsWith(PING)) {
      // Every replica hears every replica's heartbeat; only its own answers its round trip.
      if (payload === this.#ping?.token) this.#ping.heard();
      return;
    }
    const r = parsePayload(payload);
    // Too large to carry the row, or not ours: read the store again rather than guess.
    if (r) this.apply(r);
    else if (this.#pending) this.#reloadAgain = true;
    else this.#load(channel).catch((err: unknown) => this.#lost(channel, err));
  }

  #roundTrip(): Promise<void> {
    this.#beat ??= this.#selfNotify().finally(() => {
      this.#beat = undefined;
    });
    return this.#beat;
  }

  /**
   * A message to itself through the channel, heard back within
   * `staleAfterMs`, or the channel counts as down. Messages arrive in the
   * order they were published (committed), so hearing it proves every
   * revocation published before it was sent has arrived; and a session that
   * silently stopped listening (a pooler in transaction mode) cannot pass it,
   * where a `SELECT 1` would.
   */
  async #selfNotify(): Promise<void> {
    const channel = this.#channel;
    if (!channel || this.#phase !== 'live') throw new Error(`the revocation channel is ${this.#phase}`);
    const began = this.#now();
    const token = `${PING}${this.#id}:${++this.#pings}`;
    const heard = new Promise<void>((resolve) => {
      this.#ping = { token, heard: resolve };
    });
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      // After the next I/O poll: an answer waiting in the socket behind a busy event loop still counts.
      const late = () =>
        reject(new Error(`no answer on the revocation channel within ${this.#staleAfterMs} ms`));
      timer = setTimeout(() => setImmediate(late), this.#staleAfterMs);
    });
    try {
      await Promise.race([Promise.all([channel.publish(token), heard]), bound]);
      if (channel === this.#channel && began > this.#confirmedAt) this.#confirmedAt = began;
    } catch (err) {
      this.#lost(channel, err);
      throw err;
    } finally {
      clearTimeout(timer);
      this.#ping = undefined;
    }
  }

  #lost(channel: FeedChannel, err: unknown): void {
    if (channel !== this.#channel) return;
    this.#channel = undefined;
    this.#pending = undefined;
    this.#stopHeartbeat();
    void channel.close(false).catch(() => {});
    if (this.#phase === 'closed') return;
    this.#phase = 'down';
    this.emit('down', err instanceof Error ? err : new Error(String(err)));
    this.#wake?.();
  }

  #stopHeartbeat(): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }
}

const unavailable = (message: string, cause?: unknown) =>
  new PortcullisError('ERR_STATE_UNAVAILABLE', message, cause === undefined ? {} : { cause });

const KINDS: readonly unknown[] = ['jti', 'sub', 'workload'];

/** The JSON a writer publishes for a revocation (`reason` optional). */
export const revocationMessage = (r: Revocation): string =>
  JSON.stringify({
    kind: r.kind,
    value: r.value,
    revokedAt: r.revokedAt,
    ...(r.reason ? { reason: r.reason } : {}),
  });

/** A message's revocation, or undefined for anything else (PostgreSQL's trigger sends `reload` for a row too large). */
function parsePayload(payload: string): Revocation | undefined {
  let v: { kind?: unknown; value?: unknown; revokedAt?: unknown; reason?: unknown };
  try {
    v = JSON.parse(payload) as typeof v;
  } catch {
    return undefined;
  }
  if (!KINDS.includes(v?.kind) || typeof v.value !== 'string' || typeof v.revokedAt !== 'number')
    return undefined;
  return {
    kind: v.kind as Revocation['kind'],
    value: v.value,
    revokedAt: v.revokedAt,
    ...(typeof v.reason === 'string' ? { reason: v.reason } : {}),
  };
}
