import { randomBytes } from 'node:crypto';
import type { BreakGlassConfig } from '../approval/config.ts';
import type { Journal } from '../approval/service.ts';
import type { ApproverAct } from '../approval/types.ts';
import { PortcullisError } from '../errors.ts';
import type { Logger } from '../observability/log.ts';
import type { RecordStore, StoredRecord } from '../state/records.ts';
import type { BreakGlassAlerts } from './alerts.ts';
import { type BreakGlassEvent, breakGlassRecord, type RecordExtra } from './records.ts';
import { parseScope, scopeText } from './scope.ts';
import {
  APPROVERS_NEEDED,
  type BreakGlassStatus,
  type BreakGlassWindow,
  changeOf,
  fromRecord,
  isLive,
  toRecord,
} from './window.ts';

export interface BreakGlassServiceDeps {
  readonly store: RecordStore;
  readonly journal: Journal;
  readonly alerts: BreakGlassAlerts;
  readonly log: Logger;
  readonly now: () => number;
  readonly config: BreakGlassConfig;
  /** The configured upstreams: a scope may name only these. */
  readonly upstreams: readonly string[];
  /** Told of every change this process made, so it need not wait for its next read of the store. */
  readonly changed?: (w: BreakGlassWindow) => void;
}

export interface WindowRequest {
  readonly scope: string;
  readonly ttlMs: number;
  readonly reason: string;
  /** The operator asking: `operator:NAME`. */
  readonly by: string;
}

/** Failures of the machinery, not refusals of the action: nothing to record (and often no way to). */
const UNRECORDED: ReadonlySet<string> = new Set(['ERR_STATE_UNAVAILABLE', 'ERR_AUDIT_UNAVAILABLE']);

/** Attempts at a compare-and-set before giving up on a record others keep changing. */
const ATTEMPTS = 8;

/**
 * Break-glass windows in the shared state store: asked for by one operator,
 * opened by two others, closed by any operator or by time. Every change is a
 * compare-and-set on the window's record and an audit record (`type:
 * breakglass`), and raises an alert; every refused action is recorded too.
 */
export class BreakGlassService {
  private readonly d: BreakGlassServiceDeps;

  constructor(deps: BreakGlassServiceDeps) {
    this.d = deps;
  }

  async get(id: string): Promise<BreakGlassWindow | undefined> {
    const rec = await this.d.store.get('breakglass', id);
    return rec ? fromRecord(rec) : undefined;
  }

  async list(statuses?: readonly BreakGlassStatus[], limit = 100): Promise<BreakGlassWindow[]> {
    const recs = await this.d.store.find('breakglass', { ...(statuses ? { status: statuses } : {}), limit });
    return recs.map(fromRecord);
  }

  /** A new request, recorded before it exists: a window the log does not show can never open. */
  async request(req: WindowRequest): Promise<BreakGlassWindow> {
    const scope = scopeText(parseScope(req.scope, this.d.upstreams));
    const { maxTtlMs, requestTtlMs } = this.d.config;
    if (!Number.isSafeInteger(req.ttlMs) || req.ttlMs < 1000 || req.ttlMs > maxTtlMs)
      throw new PortcullisError('ERR_BREAKGLASS_TTL', `--ttl must be 1s to ${maxTtlMs / 1000}s`);
    if (req.reason.trim() === '')
      throw new PortcullisError('ERR_USAGE', 'a break-glass window needs a --reason');
    const now = this.d.now();
    const w: BreakGlassWindow = {
      id: `bg_${randomBytes(12).toString('base64url')}`,
      status: 'requested',
      scope,
      reason: req.reason,
      openedBy: req.by,
      approvers: [],
      ttlMs: req.ttlMs,
      requestedAt: now,
      expiresAt: now + requestTtlMs,
    };
    await this.d.journal(breakGlassRecord(w, 'requested', now, { actor: req.by }));
    if (!(await this.d.store.insert(toRecord(w))))
      throw new PortcullisError('ERR_STATE_UNAVAILABLE', `break-glass id ${w.id} collided`);
    this.d.alerts.raise('requested', w, { by: req.by });
    return w;
  }

  /**
   * One approver's approval; the second opens the window for its ttl.
   * Refused, each with its code and an audit record: an unknown id, a window
   * not awaiting approval, the requester approving, the same approver twice.
   */
  async approve(id: string, act: ApproverAct): Promise<BreakGlassWindow> {
    return this.refusalsRecorded(id, act, async () => {
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        const rec = await this.existing(id);
        const w = fromRecord(rec);
        refuseApproval(w, act, this.d.now());
        const approvers = [...w.approvers, act];
        const opens = approvers.length >= APPROVERS_NEEDED;
        const next: BreakGlassWindow = opens
          ? { ...w, approvers, status: 'open', openedAt: act.at, expiresAt: act.at + w.ttlMs }
          : { ...w, approvers };
        const event = opens ? 'opened' : 'approved';
        if (await this.change(rec, next, event, { act }, { undoOnFailure: true })) return next;
      }
      throw busy(id);
    });
  }

  /** Closes an open window, or refuses a request before it opened; any operator may. */
  async close(id: string, act: ApproverAct): Promise<BreakGlassWindow> {
    return this.refusalsRecorded(id, act, async () => {
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        const rec = await this.existing(id);
        const w = fromRecord(rec);
        if (!isLive(w)) throw new PortcullisError('ERR_BREAKGLASS_ENDED', `window ${id} is ${w.status}`);
        const status = w.status === 'open' ? 'closed' : 'refused';
        const next: BreakGlassWindow = {
          ...w,
          status,
          closedBy: act.approver,
          closedAt: act.at,
          ...(act.comment ? { comment: act.comment } : {}),
        };
        if (await this.change(rec, next, 'closed', { act })) return next;
      }
      throw busy(id);
    });
  }

  /** Ends a request or window past its time; undefined when it is not, or another process ended it first. */
  async expire(w: BreakGlassWindow): Promise<BreakGlassWindow | undefined> {
    const rec = await this.d.store.get('breakglass', w.id);
    if (!rec) return undefined;
    const stored = fromRecord(rec);
    if (!isLive(stored) || this.d.now() < stored.expiresAt) return undefined;
    const next: BreakGlassWindow = { ...stored, status: 'expired' };
    return (await this.change(rec, next, 'expired', {})) ? next : undefined;
  }

  private async existing(id: string): Promise<StoredRecord> {
    const rec = await this.d.store.get('breakglass', id);
    if (!rec) throw new PortcullisError('ERR_BREAKGLASS_UNKNOWN', `no break-glass window ${id}`);
    return rec;
  }

  /**
   * Stores `next` if the record is still `rec`, then records and announces it.
   * An opening whose record cannot be made durable is undone: no window opens
   * that the log does not show. False when another change came first.
   */
  private async change(
    rec: StoredRecord,
    next: BreakGlassWindow,
    event: BreakGlassEvent,
    extra: RecordExtra,
    opts: { undoOnFailure?: boolean } = {},
  ): Promise<boolean> {
    const stored = await this.d.store.replace(rec, changeOf(next));
    if (!stored) return false;
    try {
      await this.d.journal(breakGlassRecord(next, event, this.d.now(), extra));
    } catch (err) {
      if (opts.undoOnFailure) await this.undo(stored, fromRecord(rec));
      // A close or an expiry stands unrecorded: it lets nothing more through.
      else this.d.changed?.(next);
      throw err;
    }
    this.d.changed?.(next);
    this.d.alerts.raise(event, next, extra.act ? { by: extra.act.approver, comment: extra.act.comment } : {});
    return true;
  }

  private async undo(stored: StoredRecord, previous: BreakGlassWindow): Promise<void> {
    const undone = await this.d.store.replace(stored, changeOf(previous)).catch(() => undefined);
    if (!undone)
      this.d.log.error('break-glass change not recorded and not undone', {
        alert: true,
        breakGlassId: previous.id,
      });
  }

  private async refusalsRecorded<T>(id: string, act: ApproverAct, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (err instanceof PortcullisError && !UNRECORDED.has(err.code))
        await this.recordRefusal(id, act, err.code);
      throw err;
    }
  }

  /** Records an action refused before it reached a window (an operator without the role). */
  async recordRefusal(id: string, act: ApproverAct, code: string): Promise<void> {
    const w = (await this.get(id).catch(() => undefined)) ?? unknownWindow(id);
    await this.d
      .journal(breakGlassRecord(w, 'refused', act.at, { act, code }))
      .catch((err) => this.d.log.warn('break-glass refusal not recorded', { id, code, err: String(err) }));
    this.d.alerts.raise('refused', w, { by: act.approver, code });
  }
}

function refuseApproval(w: BreakGlassWindow, act: ApproverAct, now: number): void {
  if (w.status !== 'requested' || now >= w.expiresAt)
    throw new PortcullisError('ERR_BREAKGLASS_NOT_PENDING', `window ${w.id} is ${w.status}`);
  if (act.approver === w.openedBy)
    throw new PortcullisError('ERR_BREAKGLASS_SELF', `${act.approver} asked for window ${w.id}`);
  if (w.approvers.some((a) => a.approver === act.approver))
    throw new PortcullisError('ERR_APPROVAL_DUPLICATE', `${act.approver} already approved ${w.id}`);
}

const busy = (id: string) =>
  new PortcullisError('ERR_STATE_UNAVAILABLE', `break-glass window ${id}: too many concurrent changes`);

const unknownWindow = (id: string): BreakGlassWindow => ({
  id,
  status: 'refused',
  scope: '',
  reason: '',
  openedBy: '',
  approvers: [],
  ttlMs: 0,
  requestedAt: 0,
  expiresAt: 0,
});
