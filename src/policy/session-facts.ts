import type { SessionSnapshot } from './request.ts';

/**
 * What a session (and a principal) has done so far, for session-aware rules.
 * Behind an interface so replicas can share it (Redis, Postgres) later; the
 * in-memory one serves a single gateway process.
 */
export interface SessionFacts {
  snapshot(sessionKey: string, principalId: string, tool: string, now: number): SessionSnapshot;
  /**
   * An allowed call: counted for rate rules, remembered for the session. Only
   * tools (`isTool`) enter the session's tool history.
   */
  record(
    sessionKey: string,
    principalId: string,
    tool: string,
    now: number,
    sensitive: boolean,
    isTool?: boolean,
  ): void;
}

export const MAX_TOOLS_PER_SESSION = 1000;
const SESSION_IDLE_MS = 6 * 60 * 60_000;
/** Slots a rate window is counted in: its precision is one slot (a second of a minute). */
const SLOTS = 60;

interface SessionState {
  tools: Set<string>;
  /** `tools` as handed out, until the set changes (snapshots share it; nobody mutates it). */
  toolList: readonly string[] | undefined;
  sensitiveRead: boolean;
  lastSeen: number;
}

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

export class MemorySessionFacts implements SessionFacts {
  private readonly windowMs: number;
  private readonly calls = new Map<string, WindowCounter>();
  private readonly sessions = new Map<string, SessionState>();
  private sweptAt = 0;

  constructor(windowMs = 60_000) {
    this.windowMs = windowMs;
  }

  snapshot(sessionKey: string, principalId: string, tool: string, now: number): SessionSnapshot {
    const s = this.sessions.get(sessionKey);
    return {
      callsLastMinute: this.calls.get(rateKey(principalId, tool))?.total(now) ?? 0,
      toolsUsed: s ? toolList(s) : [],
      sensitiveRead: s?.sensitiveRead ?? false,
      toolsFull: (s?.tools.size ?? 0) >= MAX_TOOLS_PER_SESSION,
    };
  }

  record(
    sessionKey: string,
    principalId: string,
    tool: string,
    now: number,
    sensitive: boolean,
    isTool = true,
  ): void {
    const key = rateKey(principalId, tool);
    let counter = this.calls.get(key);
    if (!counter) {
      counter = new WindowCounter(this.windowMs);
      this.calls.set(key, counter);
    }
    counter.add(now);
    let s = this.sessions.get(sessionKey);
    if (!s) {
      s = { tools: new Set(), toolList: undefined, sensitiveRead: false, lastSeen: now };
      this.sessions.set(sessionKey, s);
    }
    if (isTool && s.tools.size < MAX_TOOLS_PER_SESSION && !s.tools.has(tool)) {
      s.tools.add(tool);
      s.toolList = undefined;
    }
    s.sensitiveRead ||= sensitive;
    s.lastSeen = now;
    this.sweep(now);
  }

  private sweep(now: number): void {
    if (now - this.sweptAt < this.windowMs) return;
    this.sweptAt = now;
    for (const [key, counter] of this.calls) if (counter.total(now) === 0) this.calls.delete(key);
    for (const [key, s] of this.sessions) if (now - s.lastSeen > SESSION_IDLE_MS) this.sessions.delete(key);
  }
}

function toolList(s: SessionState): readonly string[] {
  s.toolList ??= Object.freeze([...s.tools]);
  return s.toolList;
}

const rateKey = (principalId: string, tool: string): string => `${principalId}\0${tool}`;
