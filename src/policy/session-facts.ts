import type { SessionSnapshot } from './request.ts';

/**
 * What a session (and a principal) has done so far, for session-aware rules.
 * Behind an interface so replicas can share it (Redis, Postgres) later; the
 * in-memory one serves a single gateway process.
 */
export interface SessionFacts {
  snapshot(sessionKey: string, principalId: string, tool: string, now: number): SessionSnapshot;
  /** An allowed call: counted for rate rules, remembered for the session. */
  record(sessionKey: string, principalId: string, tool: string, now: number, sensitive: boolean): void;
}

const MAX_TOOLS_PER_SESSION = 1000;
const SESSION_IDLE_MS = 6 * 60 * 60_000;

interface SessionState {
  tools: Set<string>;
  sensitiveRead: boolean;
  lastSeen: number;
}

export class MemorySessionFacts implements SessionFacts {
  private readonly windowMs: number;
  private readonly calls = new Map<string, number[]>();
  private readonly sessions = new Map<string, SessionState>();
  private sweptAt = 0;

  constructor(windowMs = 60_000) {
    this.windowMs = windowMs;
  }

  snapshot(sessionKey: string, principalId: string, tool: string, now: number): SessionSnapshot {
    const s = this.sessions.get(sessionKey);
    return {
      callsLastMinute: this.recent(rateKey(principalId, tool), now).length,
      toolsUsed: s ? [...s.tools] : [],
      sensitiveRead: s?.sensitiveRead ?? false,
    };
  }

  record(sessionKey: string, principalId: string, tool: string, now: number, sensitive: boolean): void {
    const key = rateKey(principalId, tool);
    const recent = this.recent(key, now);
    recent.push(now);
    this.calls.set(key, recent);
    let s = this.sessions.get(sessionKey);
    if (!s) {
      s = { tools: new Set(), sensitiveRead: false, lastSeen: now };
      this.sessions.set(sessionKey, s);
    }
    if (s.tools.size < MAX_TOOLS_PER_SESSION) s.tools.add(tool);
    s.sensitiveRead ||= sensitive;
    s.lastSeen = now;
    this.sweep(now);
  }

  private recent(key: string, now: number): number[] {
    return (this.calls.get(key) ?? []).filter((t) => t > now - this.windowMs);
  }

  private sweep(now: number): void {
    if (now - this.sweptAt < this.windowMs) return;
    this.sweptAt = now;
    for (const [key, times] of this.calls)
      if (!times.some((t) => t > now - this.windowMs)) this.calls.delete(key);
    for (const [key, s] of this.sessions) if (now - s.lastSeen > SESSION_IDLE_MS) this.sessions.delete(key);
  }
}

const rateKey = (principalId: string, tool: string): string => `${principalId}\0${tool}`;
