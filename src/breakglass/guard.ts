import type { BreakGlassConfig } from '../approval/config.ts';
import type { Announcer, Journal } from '../approval/service.ts';
import type { Principal } from '../identity/principal.ts';
import type { Logger } from '../observability/log.ts';
import type { RecordStore } from '../state/records.ts';
import { BreakGlassAlerts } from './alerts.ts';
import { breakGlassRecord } from './records.ts';
import { type BreakGlassScope, covers, parseScope } from './scope.ts';
import { BreakGlassService } from './service.ts';
import { type BreakGlassWindow, fromRecord, openingProblem } from './window.ts';

export interface BreakGlassDeps {
  readonly store: RecordStore;
  readonly journal: Journal;
  readonly announcer: Announcer;
  readonly log: Logger;
  readonly now: () => number;
  readonly config: BreakGlassConfig;
  readonly upstreams: readonly string[];
}

/** A call that a policy or approval refusal would stop, as a window judges it. */
export interface GlassCall {
  readonly principal: Principal;
  readonly upstream: string;
  readonly tool?: string | undefined;
}

/** A call that passed through a window, for its alert and `used` record. */
export interface GlassUse {
  readonly callId: string;
  readonly session: string;
  readonly tool: string;
  readonly principal: string;
}

/** `used` alerts and records per window: at most one in this many milliseconds, counting the calls between. */
export const USE_ALERT_MS = 1000;

interface InForce {
  readonly window: BreakGlassWindow;
  readonly scope: BreakGlassScope;
}

/**
 * The open windows as this gateway knows them: read from the state store
 * every `refreshMs` (and at once after a change this process makes), kept in
 * memory so a call can pass while the state store itself is failing, and each
 * ended locally at its `expiresAt` by the injected clock. The refresh also
 * ends (records and announces) what is past its time.
 */
export class BreakGlass {
  readonly windows: BreakGlassService;
  private readonly d: BreakGlassDeps;
  private readonly alerts: BreakGlassAlerts;
  private inForce = new Map<string, InForce>();
  private readonly lastUse = new Map<string, { at: number; uses: number }>();
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  /** Windows marked open that this service could not have opened: refused once, logged once. */
  private readonly ignored = new Set<string>();
  /** Counts the changes this process made, so a read of the store begun before one does not undo it. */
  private generation = 0;

  constructor(deps: BreakGlassDeps) {
    this.d = deps;
    this.alerts = new BreakGlassAlerts(deps);
    this.windows = new BreakGlassService({ ...deps, alerts: this.alerts, changed: (w) => this.changed(w) });
  }

  /** Reads the windows now and every `refreshMs` after, until `stop`. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.refresh(), this.d.config.refreshMs).unref();
    void this.refresh();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.refreshing;
  }

  /** The open window covering the call, if any; never one for a caller nobody authenticated. */
  cover(call: GlassCall): BreakGlassWindow | undefined {
    if (this.inForce.size === 0 || call.principal.authMethod === 'none') return undefined;
    const now = this.d.now();
    for (const { window, scope } of this.inForce.values())
      if (now < window.expiresAt && covers(scope, call)) return window;
    return undefined;
  }

  /** A call passed through window `id`: an alert and a `used` record, at most once a second per window. */
  used(id: string, call: GlassUse): void {
    const now = this.d.now();
    const last = this.lastUse.get(id);
    if (last && now - last.at < USE_ALERT_MS) {
      last.uses++;
      return;
    }
    const uses = (last?.uses ?? 0) + 1;
    this.lastUse.set(id, { at: now, uses: 0 });
    const w = this.inForce.get(id)?.window ?? { ...GONE, id };
    this.alerts.raise('used', w, { ...call, uses });
    // The call's own decision record, durable before it was forwarded, is its audit record: this one is extra.
    this.d
      .journal(breakGlassRecord(w, 'used', now, { call, uses }))
      .catch((err) =>
        this.d.log.warn('break-glass use not recorded', { breakGlassId: id, err: String(err) }),
      );
  }

  /** Reads the live windows; ends those past their time. A store that cannot answer leaves the known ones. */
  refresh(): Promise<void> {
    this.refreshing ??= this.readWindows().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async readWindows(): Promise<void> {
    const generation = this.generation;
    let live: BreakGlassWindow[];
    try {
      live = (await this.d.store.find('breakglass', { status: ['requested', 'open'], limit: 1000 })).map(
        fromRecord,
      );
    } catch (err) {
      this.d.log.warn('break-glass windows not read; the known ones stay until their time', {
        err: String(err),
      });
      return;
    }
    const now = this.d.now();
    const due = live.filter((w) => now >= w.expiresAt);
    // A change this process made while the store was read is newer than what was read.
    if (generation === this.generation) {
      const next = new Map<string, InForce>();
      for (const w of live) if (w.status === 'open' && now < w.expiresAt) this.keep(next, w);
      for (const id of this.inForce.keys()) if (!next.has(id)) this.ended(id);
      this.inForce = next;
    }
    for (const w of due) await this.expire(w);
  }

  private async expire(w: BreakGlassWindow): Promise<void> {
    await this.windows
      .expire(w)
      .catch((err) =>
        this.d.log.warn('break-glass expiry not recorded', { breakGlassId: w.id, err: String(err) }),
      );
  }

  private keep(into: Map<string, InForce>, w: BreakGlassWindow): void {
    const known = this.inForce.get(w.id);
    if (known) return void into.set(w.id, known);
    if (this.ignored.has(w.id)) return;
    try {
      const problem = openingProblem(w, this.d.config.maxTtlMs);
      if (problem) throw new Error(problem);
      into.set(w.id, { window: w, scope: parseScope(w.scope) });
      this.d.log.warn('break-glass window in force', { alert: true, breakGlassId: w.id, scope: w.scope });
    } catch (err) {
      this.ignored.add(w.id);
      this.d.log.error('break-glass window ignored', {
        alert: true,
        breakGlassId: w.id,
        problem: String(err),
      });
    }
  }

  private ended(id: string): void {
    this.lastUse.delete(id);
    this.d.log.warn('break-glass window no longer in force', { alert: true, breakGlassId: id });
  }

  /** A change this process made: in force at once, or no longer. */
  private changed(w: BreakGlassWindow): void {
    this.generation++;
    const next = new Map(this.inForce);
    if (w.status === 'open') this.keep(next, w);
    else if (next.delete(w.id)) this.ended(w.id);
    this.inForce = next;
  }
}

const GONE: BreakGlassWindow = {
  id: '',
  status: 'closed',
  scope: '',
  reason: '',
  openedBy: '',
  approvers: [],
  ttlMs: 0,
  requestedAt: 0,
  expiresAt: 0,
};
