import { createHash, randomBytes } from 'node:crypto';
import { PortcullisError } from '../errors.ts';
import type { Logger } from '../observability/log.ts';
import type { RecordStore, StoredRecord } from '../state/records.ts';
import { isSelfApproval } from './approvers.ts';
import { approvalRecord } from './records.ts';
import type { Approval, ApprovalEvent, ApproverAct } from './types.ts';
import { Wakeups } from './wakeups.ts';

/** How often a waiting call looks at the state store for a decision made elsewhere. */
export const POLL_MS = 200;

/** Decided approvals stay listable this long past their expiry, then the store purges them. */
const RETAIN_MS = 24 * 3600 * 1000;

/** Appends one audit record and resolves with its index once durable; rejects when it cannot be. */
export type Journal = (record: Record<string, unknown>) => Promise<number>;

export interface Announcer {
  announce(event: ApprovalEvent): void;
}

/** The call an approval is for, as the approval stage describes it. */
export interface CallToApprove {
  readonly callId: string;
  readonly session: string;
  readonly principal: string;
  readonly user?: string;
  readonly principalLabel: string;
  readonly tool: string;
  readonly arguments: Readonly<Record<string, unknown>>;
  readonly argsHash: string;
  readonly reason: string;
  readonly required: number;
  readonly decisionIndex: number | null;
}

export interface ApprovalServiceDeps {
  readonly store: RecordStore;
  readonly journal: Journal;
  readonly announcer: Announcer;
  readonly log: Logger;
  readonly now: () => number;
  readonly ttlMs: number;
  /** This process, for approvals it must abandon when it closes. */
  readonly gateway: string;
}

export type Verdict = 'grant' | 'deny';

/**
 * Approvals in the shared state store: created for a held call, decided by
 * approvers (from any replica or the CLI), and used exactly once. Every change
 * is a compare-and-set, so two deciders or two identical calls racing cannot
 * both win; every change is an audit record linked to the call's decision.
 */
export class ApprovalService {
  readonly wakeups = new Wakeups();
  private readonly d: ApprovalServiceDeps;
  /** Approvals this process created and has not seen end: abandoned on close. */
  private readonly mine = new Set<string>();
  /** Whether this process ever held a call or decided one: a gateway that never did leaves the store alone. */
  private used = false;

  constructor(deps: ApprovalServiceDeps) {
    this.d = deps;
  }

  async get(id: string): Promise<Approval | undefined> {
    const rec = await this.d.store.get('approval', id);
    return rec ? fromRecord(rec) : undefined;
  }

  async list(statuses?: readonly Approval['status'][], limit = 100): Promise<Approval[]> {
    const recs = await this.d.store.find('approval', { ...(statuses ? { status: statuses } : {}), limit });
    return recs.map(fromRecord);
  }

  /**
   * The approval this call can use or wait on: a granted one for the identical
   * call (same principal, tool and argument hash) first, then a pending one,
   * else a new pending one (recorded and announced).
   */
  async open(call: CallToApprove): Promise<Approval> {
    this.used = true;
    const now = this.d.now();
    const found = await this.d.store.find('approval', {
      matchKey: matchKeyOf(call),
      status: ['granted', 'pending'],
      limit: 20,
    });
    const live = found.map(fromRecord).filter((a) => a.expiresAt > now && a.required >= call.required);
    const reuse = live.find((a) => a.status === 'granted') ?? live.find((a) => a.status === 'pending');
    if (reuse) return reuse;
    return this.create(call, now);
  }

  private async create(call: CallToApprove, now: number): Promise<Approval> {
    const a: Approval = {
      id: `apr_${randomBytes(12).toString('base64url')}`,
      status: 'pending',
      principal: call.principal,
      ...(call.user ? { user: call.user } : {}),
      principalLabel: call.principalLabel,
      tool: call.tool,
      argsHash: call.argsHash,
      arguments: call.arguments,
      reason: call.reason,
      required: call.required,
      callId: call.callId,
      decisionIndex: call.decisionIndex,
      session: call.session,
      gateway: this.d.gateway,
      createdAt: now,
      expiresAt: now + this.d.ttlMs,
      grants: [],
    };
    // Recorded before it exists: an approval the log does not show cannot be granted.
    await this.d.journal(approvalRecord(a, 'requested', now));
    const inserted = await this.d.store.insert(toRecord(a));
    if (!inserted) throw new PortcullisError('ERR_STATE_UNAVAILABLE', `approval id ${a.id} collided`);
    this.mine.add(a.id);
    this.announce('approval.requested', a);
    return a;
  }

  /**
   * Waits until the approval is decided, expires, or `until` passes (then it
   * is returned still pending), or the signal aborts.
   */
  async waitFor(id: string, opts: { signal: AbortSignal; until: number }): Promise<Approval> {
    for (;;) {
      const a = await this.get(id);
      if (!a) throw new PortcullisError('ERR_APPROVAL_UNKNOWN', `approval ${id} vanished while held`);
      if (a.status !== 'pending') return a;
      const now = this.d.now();
      if (now >= a.expiresAt) return (await this.expire(a)) ?? (await this.waitAgain(id));
      if (now >= opts.until || opts.signal.aborted) return a;
      await this.wakeups.next(id, Math.min(POLL_MS, opts.until - now, a.expiresAt - now), opts.signal);
    }
  }

  private async waitAgain(id: string): Promise<Approval> {
    const a = await this.get(id);
    if (!a) throw new PortcullisError('ERR_APPROVAL_UNKNOWN', `approval ${id} vanished while held`);
    return a;
  }

  /** Uses a granted approval for one call: true for exactly one caller, however many race. */
  async consume(
    a: Approval,
    by: { callId: string; session: string },
    decided: Record<string, unknown> = {},
  ): Promise<boolean> {
    const rec = await this.d.store.get('approval', a.id);
    if (rec?.status !== 'granted') return false;
    const now = this.d.now();
    if (now >= a.expiresAt) {
      await this.expire(fromRecord(rec));
      return false;
    }
    const used: Approval = { ...fromRecord(rec), status: 'consumed', consumedBy: by.callId };
    if (!(await this.d.store.replace(rec, changeOf(used)))) return false;
    this.mine.delete(a.id);
    // The call proceeds only once this is durable: the stage lets a failure here deny it.
    await this.d.journal({ ...approvalRecord(used, 'consumed', now, by), ...decided });
    return true;
  }

  /**
   * An approver's grant or denial. Refused, each with its code and an audit
   * record: an unknown id, an approval no longer pending, the caller deciding
   * its own call, the same approver granting twice, an argument hash that is
   * not the call's.
   */
  async decide(id: string, verdict: Verdict, act: ApproverAct, expectHash?: string): Promise<Approval> {
    try {
      return await this.decideOnce(id, verdict, act, expectHash);
    } catch (err) {
      if (err instanceof PortcullisError && err.code !== 'ERR_STATE_UNAVAILABLE')
        await this.recordRefusal(id, act, err.code);
      throw err;
    }
  }

  private async decideOnce(id: string, verdict: Verdict, act: ApproverAct, expectHash?: string) {
    for (let attempt = 0; attempt < 8; attempt++) {
      const rec = await this.d.store.get('approval', id);
      if (!rec) throw new PortcullisError('ERR_APPROVAL_UNKNOWN', `no approval ${id}`);
      const a = fromRecord(rec);
      refuseDecision(a, verdict, act, expectHash, this.d.now());
      const decided = decidedBy(a, verdict, act);
      const stored = await this.d.store.replace(rec, changeOf(decided));
      if (!stored) continue;
      const event = verdict === 'deny' ? 'denied' : 'granted';
      await this.d.journal(approvalRecord(decided, event, act.at, { act }));
      this.wakeups.wake(id);
      if (decided.status !== 'pending') this.announce(`approval.${event}`, decided, act);
      return decided;
    }
    throw new PortcullisError('ERR_STATE_UNAVAILABLE', `approval ${id}: too many concurrent changes`);
  }

  /**
   * Records a refusal made before a decision reached `decide` (an approver
   * without the role or refused by policy, a callback body that is no
   * decision): an approval record with event `refused`, for the approval the
   * refused request named, if it exists.
   */
  async refused(id: string, act: ApproverAct, code: string): Promise<void> {
    await this.recordRefusal(id, act, code);
  }

  private async recordRefusal(id: string, act: ApproverAct, code: string): Promise<void> {
    const a = await this.get(id).catch(() => undefined);
    const subject: Approval = a ?? unknownApproval(id);
    await this.d
      .journal(approvalRecord(subject, 'refused', act.at, { act, code }))
      .catch((err) => this.d.log.warn('approval refusal not recorded', { id, code, err: String(err) }));
  }

  /** Ends a pending or granted approval past its expiry; undefined when another process changed it first. */
  async expire(a: Approval): Promise<Approval | undefined> {
    return this.end(a, 'expired', 'approval.expired');
  }

  private async end(a: Approval, status: 'expired' | 'abandoned', event?: ApprovalEvent['type']) {
    const rec = await this.d.store.get('approval', a.id);
    if (!rec || (rec.status !== 'pending' && rec.status !== 'granted')) return undefined;
    const ended: Approval = { ...fromRecord(rec), status };
    if (!(await this.d.store.replace(rec, changeOf(ended)))) return undefined;
    this.mine.delete(a.id);
    await this.d.journal(approvalRecord(ended, status, this.d.now()));
    this.wakeups.wake(a.id);
    if (event) this.announce(event, ended);
    return ended;
  }

  /** Expires what is past its time and purges what is long gone; run now and then by any replica. */
  async sweep(): Promise<number> {
    if (!this.used) return 0;
    const now = this.d.now();
    const open = await this.list(['pending', 'granted'], 1000);
    let expired = 0;
    for (const a of open) if (a.expiresAt <= now && (await this.expire(a))) expired++;
    await this.d.store.purgeExpired(now - RETAIN_MS);
    return expired;
  }

  /** On shutdown: what this process created and nobody used can never be used (its callers are told). */
  async abandonMine(): Promise<void> {
    for (const id of [...this.mine]) {
      const a = await this.get(id).catch(() => undefined);
      if (a) await this.end(a, 'abandoned').catch(() => undefined);
    }
    this.mine.clear();
  }

  private announce(type: ApprovalEvent['type'], a: Approval, act?: ApproverAct): void {
    // The log gets every event even with no webhook configured: operators' tooling can follow it.
    this.d.log.info('approval event', { event: type, id: a.id, tool: a.tool, principal: a.principal });
    try {
      this.d.announcer.announce({
        type,
        time: this.d.now(),
        id: a.id,
        summary: `${a.principalLabel} wants ${a.tool}${act ? ` (${act.approver}: ${type.split('.')[1]})` : ''}`,
        data: {
          tool: a.tool,
          principal: a.principal,
          argsHash: a.argsHash,
          reason: a.reason,
          required: a.required,
          grants: a.grants.length,
          expiresAt: a.expiresAt,
          approve: `portcullis approvals approve ${a.id} --as NAME`,
          deny: `portcullis approvals deny ${a.id} --as NAME --comment TEXT`,
        },
      });
    } catch (err) {
      this.d.log.warn('approval announcement failed', { id: a.id, err: String(err) });
    }
  }
}

function refuseDecision(
  a: Approval,
  verdict: Verdict,
  act: ApproverAct,
  expectHash: string | undefined,
  now: number,
) {
  if (a.status !== 'pending' || now >= a.expiresAt)
    throw new PortcullisError('ERR_APPROVAL_NOT_PENDING', `approval ${a.id} is ${a.status}`);
  if (expectHash !== undefined && expectHash !== a.argsHash)
    throw new PortcullisError('ERR_APPROVAL_MISMATCH', `approval ${a.id}: argument hash ${expectHash}`);
  if (isSelfApproval(act, { principal: a.principal, ...(a.user ? { user: a.user } : {}) }))
    throw new PortcullisError('ERR_APPROVAL_SELF', `${act.approver} cannot decide its own call`);
  if (verdict === 'grant' && a.grants.some((g) => g.approver === act.approver))
    throw new PortcullisError('ERR_APPROVAL_DUPLICATE', `${act.approver} already approved ${a.id}`);
}

function decidedBy(a: Approval, verdict: Verdict, act: ApproverAct): Approval {
  if (verdict === 'deny') return { ...a, status: 'denied', denial: act };
  const grants = [...a.grants, act];
  return { ...a, grants, status: grants.length >= a.required ? 'granted' : 'pending' };
}

const unknownApproval = (id: string): Approval => ({
  id,
  status: 'pending',
  principal: '',
  principalLabel: '',
  tool: '',
  argsHash: '',
  arguments: {},
  reason: '',
  required: 0,
  callId: '',
  decisionIndex: null,
  session: '',
  gateway: '',
  createdAt: 0,
  expiresAt: 0,
  grants: [],
});

/** What binds an approval to the exact call: principal, tool and argument hash (hashed, so the key stays short). */
export const matchKeyOf = (c: { principal: string; tool: string; argsHash: string }): string =>
  createHash('sha256').update(`${c.principal}\0${c.tool}\0${c.argsHash}`).digest('hex');

/** The status column is the truth; the body carries the rest. */
const fromRecord = (rec: StoredRecord): Approval => ({
  ...(rec.body as unknown as Approval),
  status: rec.status as Approval['status'],
});

function toRecord(a: Approval): Omit<StoredRecord, 'version'> {
  return { kind: 'approval', id: a.id, createdAt: a.createdAt, ...changeOf(a) };
}

function changeOf(a: Approval): Pick<StoredRecord, 'status' | 'matchKey' | 'expiresAt' | 'body'> {
  return {
    status: a.status,
    matchKey: matchKeyOf(a),
    expiresAt: a.expiresAt,
    body: a as unknown as Record<string, unknown>,
  };
}
