import type { SessionSnapshot } from './request.ts';

/**
 * What a caller (a principal) has done lately, for session-aware rules. Kept
 * per principal, not per session: a caller that reads a secret in one session
 * and sends it from another (or from a stateless request) is the same caller.
 * Behind an interface so replicas can share it (Redis, Postgres) later; the
 * in-memory one serves a single gateway process.
 */
export interface SessionFacts {
  snapshot(principalId: string, name: string, now: number): SessionSnapshot;
  /**
   * Whether a call of this principal can be remembered. False only when as
   * many callers as the history holds all still have something to remember:
   * the call is then refused, since forgetting one of them could let it through.
   */
  admits(principalId: string, now: number): boolean;
  /** An allowed call: counted for rate rules, remembered in the caller's history. */
  record(principalId: string, name: string, now: number, call: RecordedCall): void;
  /** A result this caller received carried instructions injected for the model (`context.session.tainted`). */
  taint(principalId: string, now: number): void;
  /** A result this caller received held secrets or personal data (`context.session.sensitiveRead`). */
  markSensitive(principalId: string, now: number): void;
}

export interface RecordedCall {
  /** The call read sensitive data (a marker or a read-sensitive tool). */
  readonly sensitive: boolean;
  /** Only tools enter the tool history (`toolsUsed`); resources and prompts are only counted. */
  readonly tool: boolean;
}

export interface SessionFactsOptions {
  /** The rate window (`callsLastMinute`). */
  readonly windowMs: number;
  /** How long a sensitive read and a used tool are remembered. */
  readonly historyMs: number;
  /** Callers remembered at once; beyond that, a new caller is refused until one expires. */
  readonly maxPrincipals: number;
}

export const MAX_TOOLS_PER_PRINCIPAL = 1000;
/** Slots a rate window is counted in: its precision is one slot (a second of a minute). */
const SLOTS = 60;

/**
 * Calls in the last window, counted per slot in a ring: constant memory and
 * constant work per call, whatever the rate. A slot counts while any part of
 * it is inside the window, so a call is counted for the whole window and at
 * most one slot longer: a rate rule can only be stricter than exact, never laxer.
 */
class WindowCounter {
  /** One more entry than the window has slots: the partly expired oldest slot. */
  private readonly counts = new Uint32Array(SLOTS + 1);
  /** The slot number each ring entry counts for (-1: none yet). */
  private readonly slotOf = new Float64Array(SLOTS + 1).fill(-1);
  private readonly windowMs: number;
  private readonly slotMs: number;
  /** The newest slot counted into so far (-1: none). */
  private latest = -1;

  constructor(windowMs: number) {
    this.windowMs = windowMs;
    this.slotMs = windowMs / SLOTS;
  }

  add(now: number): void {
    const slot = Math.floor(now / this.slotMs);
    if (this.latest - slot > SLOTS) this.restartAt(slot);
    this.latest = Math.max(this.latest, slot);
    const i = slot % this.counts.length;
    if (this.slotOf[i] !== slot) {
      this.slotOf[i] = slot;
      this.counts[i] = 0;
    }
    this.counts[i]!++;
  }

  /**
   * The wall clock stepped back by more than the window: the ring would
   * overwrite the newest calls. They were made moments ago in real time, so
   * they stay counted (in the current slot), never dropped.
   */
  private restartAt(slot: number): void {
    const recent = this.total((this.latest + 1) * this.slotMs);
    this.counts.fill(0);
    this.slotOf.fill(-1);
    const i = slot % this.counts.length;
    this.slotOf[i] = slot;
    this.counts[i] = recent;
    this.latest = slot;
  }

  /** Calls in the window ending at `now` (and in the slot it started in). */
  total(now: number): number {
    const firstSlot = Math.floor((now - this.windowMs) / this.slotMs);
    let sum = 0;
    for (let i = 0; i < this.counts.length; i++) if (this.slotOf[i]! >= firstSlot) sum += this.counts[i]!;
    return sum;
  }
}

/** One caller's recent history: rate counters, tools used (with when), the last sensitive read. */
class PrincipalHistory {
  readonly counters = new Map<string, WindowCounter>();
  /** Tool name → when it was last used. */
  readonly tools = new Map<string, number>();
  sensitiveAt = Number.NEGATIVE_INFINITY;
  taintedAt = Number.NEGATIVE_INFINITY;
  lastSeen: number;
  /** `tools` as handed out until it changes or an entry expires (snapshots share it; nobody mutates it). */
  private list: readonly string[] | undefined;
  private listExpiresAt = Number.POSITIVE_INFINITY;

  constructor(now: number) {
    this.lastSeen = now;
  }

  toolsUsed(now: number, historyMs: number): readonly string[] {
    if (now >= this.listExpiresAt) {
      this.expireTools(now, historyMs);
      let first = Number.POSITIVE_INFINITY;
      for (const at of this.tools.values()) first = Math.min(first, at);
      this.listExpiresAt = first + historyMs;
    }
    this.list ??= Object.freeze([...this.tools.keys()]);
    return this.list;
  }

  useTool(tool: string, now: number, historyMs: number): void {
    if (!this.tools.has(tool)) {
      this.expireTools(now, historyMs);
      if (this.tools.size >= MAX_TOOLS_PER_PRINCIPAL) return;
      this.list = undefined;
      this.listExpiresAt = Math.min(this.listExpiresAt, now + historyMs);
    }
    this.tools.set(tool, Math.max(now, this.tools.get(tool) ?? now));
  }

  expireTools(now: number, historyMs: number): void {
    for (const [tool, at] of this.tools) {
      if (now - at < historyMs) continue;
      this.tools.delete(tool);
      this.list = undefined;
    }
  }

  /** Nothing left to remember: every entry is older than the history and every counter has emptied. */
  expired(now: number, retainMs: number): boolean {
    return now - this.lastSeen >= retainMs;
  }
}

export class MemorySessionFacts implements SessionFacts {
  private readonly opts: SessionFactsOptions;
  /** Least recently seen first: the order callers expire in. */
  private readonly principals = new Map<string, PrincipalHistory>();
  /** A principal is kept until its history and every rate count (one slot beyond the window) are over. */
  private readonly retainMs: number;
  private sweptAt = 0;

  constructor(opts: Partial<SessionFactsOptions> = {}) {
    this.opts = { windowMs: 60_000, historyMs: 6 * 3_600_000, maxPrincipals: 100_000, ...opts };
    this.retainMs = Math.max(this.opts.historyMs, this.opts.windowMs * 2);
  }

  snapshot(principalId: string, name: string, now: number): SessionSnapshot {
    const h = this.principals.get(principalId);
    if (!h)
      return { callsLastMinute: 0, toolsUsed: [], sensitiveRead: false, tainted: false, toolsFull: false };
    const toolsUsed = h.toolsUsed(now, this.opts.historyMs);
    return {
      callsLastMinute: h.counters.get(name)?.total(now) ?? 0,
      toolsUsed,
      // A clock stepped back keeps the mark: it is forgotten only once a whole history has passed.
      sensitiveRead: now - h.sensitiveAt < this.opts.historyMs,
      tainted: now - h.taintedAt < this.opts.historyMs,
      toolsFull: toolsUsed.length >= MAX_TOOLS_PER_PRINCIPAL,
    };
  }

  admits(principalId: string, now: number): boolean {
    if (this.principals.has(principalId) || this.principals.size < this.opts.maxPrincipals) return true;
    for (const [id, h] of this.principals) {
      if (!h.expired(now, this.retainMs)) break;
      this.principals.delete(id);
    }
    return this.principals.size < this.opts.maxPrincipals;
  }

  record(principalId: string, name: string, now: number, call: RecordedCall): void {
    if (!this.admits(principalId, now)) throw new Error('caller history full: the call must be refused');
    const h = this.principals.get(principalId) ?? new PrincipalHistory(now);
    // Moved to the back: the map stays ordered by when each caller was last seen.
    this.principals.delete(principalId);
    this.principals.set(principalId, h);
    h.lastSeen = Math.max(h.lastSeen, now);
    let counter = h.counters.get(name);
    if (!counter) {
      counter = new WindowCounter(this.opts.windowMs);
      h.counters.set(name, counter);
    }
    counter.add(now);
    if (call.tool) h.useTool(name, now, this.opts.historyMs);
    if (call.sensitive) h.sensitiveAt = Math.max(h.sensitiveAt, now);
    this.sweep(now);
  }

  /**
   * Kept even when the history is full: the caller's call was admitted a
   * moment ago, and forgetting a taint would let its next call through.
   */
  taint(principalId: string, now: number): void {
    const h = this.touch(principalId, now);
    h.taintedAt = Math.max(h.taintedAt, now);
  }

  /** Kept even when the history is full, as a taint is. */
  markSensitive(principalId: string, now: number): void {
    const h = this.touch(principalId, now);
    h.sensitiveAt = Math.max(h.sensitiveAt, now);
  }

  /** The caller's history, moved to the back: the map stays ordered by when each caller was last seen. */
  private touch(principalId: string, now: number): PrincipalHistory {
    const h = this.principals.get(principalId) ?? new PrincipalHistory(now);
    this.principals.delete(principalId);
    this.principals.set(principalId, h);
    h.lastSeen = Math.max(h.lastSeen, now);
    return h;
  }

  /** Callers seen at once (for tests and metrics). */
  get size(): number {
    return this.principals.size;
  }

  private sweep(now: number): void {
    if (now - this.sweptAt < this.opts.windowMs) return;
    this.sweptAt = now;
    for (const [id, h] of this.principals) {
      if (h.expired(now, this.retainMs)) {
        this.principals.delete(id);
        continue;
      }
      for (const [name, counter] of h.counters) if (counter.total(now) === 0) h.counters.delete(name);
      h.expireTools(now, this.opts.historyMs);
    }
  }
}
