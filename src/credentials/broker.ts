import { createHash, randomBytes } from 'node:crypto';
import { type ErrorCode, PortcullisError } from '../errors.ts';
import type { Logger } from '../observability/log.ts';
import type { RecordStore, StoredRecord } from '../state/records.ts';
import {
  type HeldLease,
  leaseAuditRecord,
  leaseFromRecord,
  leaseToRecord,
  type RevokeReason,
  runMatchKey,
} from './lease-records.ts';
import { RunRegistry } from './runs.ts';
import type { Credential, CredentialBackend, CredentialRequest, Lease } from './types.ts';

/** Appends one audit record and resolves once durable; rejects when it cannot be. */
export type Journal = (record: Record<string, unknown>) => Promise<number>;

export interface BrokerDeps {
  readonly store: RecordStore;
  /** Each upstream's backend, by upstream name; an upstream not here gets no credential. */
  readonly backends: ReadonlyMap<string, CredentialBackend>;
  /**
   * Backends whose credential lives as long as one upstream instance (a
   * database role), by upstream name: issued by `issueForInstance`, never per call.
   */
  readonly instanceBackends?: ReadonlyMap<string, CredentialBackend>;
  readonly journal: Journal;
  readonly log: Logger;
  readonly now: () => number;
  /** How long a backend may take to issue or revoke before the call is denied. */
  readonly timeoutMs?: number;
  /** How long this run counts as alive after each heartbeat (every sweep). */
  readonly runTtlMs?: number;
  /** This run's id (tests); random by default. */
  readonly newId?: () => string;
}

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_RUN_TTL_MS = 30_000;
/** The longest a credential that cannot be recalled may live (plus a second of clock rounding). */
const MAX_SELF_EXPIRING_MS = 61_000;
/** A reused credential keeps at least this share of its lifetime for the call that gets it. */
const REUSE_LIFETIME_LEFT = 0.25;

const randomId = (prefix: string): string => `${prefix}_${randomBytes(15).toString('base64url')}`;

/** What a call is handed: the credential and the lease it is recorded under. */
export interface Brokered {
  readonly leaseId: string;
  readonly credential: Credential;
}

/** What an upstream instance is started with: its credential, and the lease recorded for it (no secret). */
export interface InstanceBrokered extends Brokered {
  readonly expiresAt: number;
  readonly lease: Lease;
}

/**
 * Hands each call the credential its upstream's backend issues, recorded as a
 * lease in the shared state store (and the audit log) before it is used;
 * revokes leases at expiry, at their session's end, on close, and after a
 * crash. Any failure to issue denies the call: there is no fallback credential.
 */
export class CredentialBroker {
  readonly #d: BrokerDeps;
  readonly #timeoutMs: number;
  readonly #runs: RunRegistry;
  #run: string;
  /** This run's leases still active, by lease id (the sweep revokes them at expiry). */
  readonly #held = new Map<string, { held: HeldLease; record: StoredRecord }>();
  /** Reusable credentials (principal or session granularity), by reuse key. */
  readonly #reusable = new Map<string, { leaseId: string; credential: Credential }>();
  /** Issues under way per reuse key: concurrent calls of one caller share one. */
  readonly #issuing = new Map<string, Promise<Brokered>>();
  #started: Promise<void> | undefined;

  readonly #instanceBackends: ReadonlyMap<string, CredentialBackend>;

  constructor(deps: BrokerDeps) {
    this.#d = deps;
    this.#instanceBackends = deps.instanceBackends ?? new Map();
    this.#timeoutMs = deps.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#runs = new RunRegistry(deps.store, deps.runTtlMs ?? DEFAULT_RUN_TTL_MS);
    this.#run = deps.newId?.() ?? randomId('run');
  }

  /** Registers this run as alive, then reaps what crashed runs left. Idempotent. */
  start(): Promise<void> {
    // Only leases someone can recall are kept in the store: a gateway with none never touches it.
    if (!this.#allBackends().some((b) => !b.selfExpiring)) return Promise.resolve();
    this.#started ??= this.#runs.register(this.#run, this.#d.now()).then(
      // What a crash left is revoked before this run issues anything; the sweeper tries again if this fails.
      () =>
        this.reap().then(
          () => {},
          (err) => this.#d.log.warn('leases not reaped', { err: String(err) }),
        ),
      (err) => {
        this.#started = undefined;
        throw err;
      },
    );
    return this.#started;
  }

  /** Whether `upstream`'s credentials are issued without anything outside the gateway (see `CredentialBackend.issuesLocally`). */
  issuesLocally(upstream: string): boolean {
    return this.#d.backends.get(upstream)?.issuesLocally === true;
  }

  /** A credential for `req`; throws ERR_CREDENTIAL_UNAVAILABLE (or the store's or audit's error): the call is denied. */
  async credentialFor(req: CredentialRequest): Promise<Brokered> {
    const backend = this.#d.backends.get(req.upstream);
    if (!backend) throw unavailable(`no credential backend for upstream ${req.upstream}`);
    if (!backend.selfExpiring) await this.start();
    if (backend.granularity === 'call') return this.issueAndRecord(backend, req);
    const key = reuseKey(backend, req);
    const reused = this.reusable(key);
    if (reused) return reused;
    const pending = this.#issuing.get(key);
    if (pending) return pending;
    const issuing = this.issueAndRecord(backend, req).then((b) => {
      this.#reusable.set(key, b);
      return b;
    });
    this.#issuing.set(key, issuing);
    return issuing.finally(() => this.#issuing.delete(key));
  }

  /**
   * The credential one upstream instance starts with, recorded as a lease (state
   * store and audit log) before it is returned, after this run has reaped what a
   * crash left. Never reused: each instance gets its own. Revoke it with `revoke`.
   */
  async issueForInstance(req: CredentialRequest): Promise<InstanceBrokered> {
    const backend = this.#instanceBackends.get(req.upstream);
    if (!backend) throw unavailable(`no instance credential backend for upstream ${req.upstream}`);
    await this.start();
    const { leaseId, credential } = await this.issueAndRecord(backend, req);
    const lease = this.#held.get(leaseId)?.held.lease;
    if (!lease) throw unavailable(`lease ${leaseId} was revoked as it was issued`);
    return { leaseId, credential, expiresAt: lease.expiresAt, lease };
  }

  /**
   * Revokes one lease this run holds, recorded with `reason`; one already
   * revoked (by the sweep, a session's end, shutdown) is left alone. Throws
   * ERR_CREDENTIAL_UNAVAILABLE when the backend could not: the lease is kept
   * for the sweep to try again at expiry (and the reaper after a crash).
   */
  async revoke(leaseId: string, reason: RevokeReason): Promise<void> {
    const h = this.#held.get(leaseId);
    if (!h) return;
    if (await this.revokeHeld(h, reason)) return;
    const record = await this.#d.store.get('lease', leaseId);
    if (record?.status !== 'active') return;
    this.#held.set(leaseId, { held: h.held, record });
    throw unavailable(`lease ${leaseId} not revoked`);
  }

  /** Whether the state store shows `leaseId` active (any run's): what a backend's own reap must leave alone. */
  async leaseActive(leaseId: string): Promise<boolean> {
    return (await this.#d.store.get('lease', leaseId))?.status === 'active';
  }

  #allBackends(): CredentialBackend[] {
    return [...this.#d.backends.values(), ...this.#instanceBackends.values()];
  }

  #backendOf(upstream: string): CredentialBackend | undefined {
    return this.#d.backends.get(upstream) ?? this.#instanceBackends.get(upstream);
  }

  /** A cached credential whose lease is still active and has enough life left. */
  private reusable(key: string): Brokered | undefined {
    const hit = this.#reusable.get(key);
    const lease = hit && this.#held.get(hit.leaseId)?.held.lease;
    if (!hit || !lease) return undefined;
    const left = lease.expiresAt - this.#d.now();
    if (left > (lease.expiresAt - lease.issuedAt) * REUSE_LIFETIME_LEFT) return hit;
    this.#reusable.delete(key);
    return undefined;
  }

  private async issueAndRecord(backend: CredentialBackend, req: CredentialRequest): Promise<Brokered> {
    const leaseId = randomId('lse');
    const issued = await this.issueBounded(backend, req, leaseId);
    const held: HeldLease = {
      lease: issued.lease,
      granularity: backend.granularity,
      run: this.#run,
      callId: req.callId,
      tool: req.tool ?? '',
    };
    try {
      checkIssued(issued.lease, req, leaseId, backend, this.#d.now());
      if (backend.selfExpiring) {
        // Nothing to revoke, sweep or reap: the log's record is the lease.
        await this.#d.journal(leaseAuditRecord(held, 'issued', this.#d.now()));
        return { leaseId, credential: issued.credential };
      }
      const record = leaseToRecord(held);
      // Recorded before use: a lease the store and the log do not show was never handed out.
      const [inserted] = await Promise.all([
        this.#d.store.insert(record),
        this.#d.journal(leaseAuditRecord(held, 'issued', this.#d.now())),
      ]);
      if (!inserted) throw unavailable(`lease id ${leaseId} collided`);
      this.#held.set(leaseId, { held, record: { ...record, version: 1 } });
    } catch (err) {
      await this.bounded(backend.revoke(issued.lease), 'revoke').catch(() => {});
      throw err;
    }
    return { leaseId, credential: issued.credential };
  }

  /** The backend's answer within the timeout, or ERR_CREDENTIAL_UNAVAILABLE; a late answer is revoked. */
  private async issueBounded(backend: CredentialBackend, req: CredentialRequest, leaseId: string) {
    const timeout = new AbortController();
    const signal = req.signal ? AbortSignal.any([req.signal, timeout.signal]) : timeout.signal;
    const issuing = Promise.resolve().then(() => backend.issue({ ...req, signal }, leaseId));
    try {
      return await this.bounded(issuing, 'issue', timeout);
    } catch (err) {
      issuing.then((late) => backend.revoke(late.lease)).catch(() => {});
      if (err instanceof PortcullisError && BACKEND_REFUSALS.has(err.code)) throw err;
      throw unavailable(`${backend.kind} backend failed for ${req.upstream}`, err);
    }
  }

  /** `work` settled within the timeout, or ERR_CREDENTIAL_UNAVAILABLE (and `abort` told). */
  private bounded<T>(work: Promise<T>, what: string, abort?: AbortController): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort?.abort();
        reject(unavailable(`credential backend ${what} took over ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
    });
    return Promise.race([work, late]).finally(() => clearTimeout(timer));
  }

  /** Revokes this run's leases past expiry, renews its heartbeat, reaps dead runs; run now and then. */
  async sweep(): Promise<number> {
    if (!this.#started) return 0;
    await this.#started;
    const now = this.#d.now();
    const expired = [...this.#held.values()].filter((h) => h.held.lease.expiresAt <= now);
    let revoked = 0;
    for (const h of expired) if (await this.revokeHeld(h, 'expired')) revoked++;
    if (!(await this.#runs.renew(now))) await this.restartRun(now);
    return revoked + (await this.reap());
  }

  /** Another replica declared this run dead and revoked its leases: forget them and live on as a new run. */
  private async restartRun(now: number): Promise<void> {
    this.#d.log.warn('credential broker: this run was reaped by another replica; starting a new run', {
      run: this.#run,
    });
    this.#held.clear();
    this.#reusable.clear();
    this.#run = randomId('run');
    await this.#runs.register(this.#run, now);
  }

  /** Revokes the session's leases (a principal's leases serve its other sessions and stay to expiry). */
  async endSession(sessionKey: string): Promise<number> {
    const mine = [...this.#held.values()].filter(
      (h) => h.held.lease.sessionKey === sessionKey && h.held.granularity !== 'principal',
    );
    let revoked = 0;
    for (const h of mine) if (await this.revokeHeld(h, 'session-end')) revoked++;
    return revoked;
  }

  /**
   * Revokes every active lease of a run that is gone (stopped, or silent past
   * its heartbeat), expired or not. A live replica's leases are its own to
   * revoke: it holds them, and sweeps them at expiry.
   */
  async reap(): Promise<number> {
    if (!this.#started) return 0;
    let revoked = 0;
    for (const run of await this.#runs.dead(this.#d.now(), this.#run)) {
      const left = await this.reapRun(String(run.body.run));
      revoked += left.revoked;
      if (left.remaining === 0) await this.#runs.reaped(run);
    }
    return revoked;
  }

  private async reapRun(run: string): Promise<{ revoked: number; remaining: number }> {
    let revoked = 0;
    const stuck = new Set<string>();
    for (;;) {
      const batch = await this.#d.store.find('lease', {
        matchKey: runMatchKey(run),
        status: ['active'],
        limit: 200,
      });
      const fresh = batch.filter((r) => !stuck.has(r.id));
      if (fresh.length === 0) return { revoked, remaining: batch.length };
      for (const record of fresh) {
        if (await this.revokeRecord(leaseFromRecord(record), record, 'reaped')) revoked++;
        else stuck.add(record.id);
      }
    }
  }

  /** Revokes every lease this run still holds, then marks it stopped. */
  async close(): Promise<void> {
    if (this.#started) {
      await this.#started.catch(() => {});
      for (const h of [...this.#held.values()]) await this.revokeHeld(h, 'shutdown');
      await this.#runs
        .stop()
        .catch((err) => this.#d.log.warn('broker run not stopped', { err: String(err) }));
    }
    for (const backend of new Set(this.#allBackends())) await backend.close?.();
  }

  private async revokeHeld(h: { held: HeldLease; record: StoredRecord }, reason: RevokeReason) {
    this.#held.delete(h.held.lease.id);
    for (const [key, b] of this.#reusable) if (b.leaseId === h.held.lease.id) this.#reusable.delete(key);
    return this.revokeRecord(h.held, h.record, reason);
  }

  /**
   * The backend makes the credential unusable, then the record says so and the
   * log records it. False when the backend could not (the lease stays active
   * for the next sweep or reaper) or another replica revoked it first.
   */
  private async revokeRecord(held: HeldLease, record: StoredRecord, reason: RevokeReason): Promise<boolean> {
    const backend = this.#backendOf(held.lease.upstream);
    try {
      if (!backend || backend.kind !== held.lease.backend)
        throw new Error(`no ${held.lease.backend} backend for upstream ${held.lease.upstream}`);
      await this.bounded(backend.revoke(held.lease), 'revoke');
      const change = { status: 'revoked', matchKey: record.matchKey, expiresAt: record.expiresAt };
      const body = { ...record.body, revokedAt: this.#d.now(), reason };
      let stored = await this.#d.store.replace(record, { ...change, body });
      if (!stored && record.version === 1) {
        // The record this run kept may be stale (a reaper's write): read it once more.
        const now = await this.#d.store.get('lease', record.id);
        if (now?.status === 'active') stored = await this.#d.store.replace(now, { ...change, body });
      }
      if (!stored) return false;
      await this.#d.journal(leaseAuditRecord(held, 'revoked', this.#d.now(), { reason }));
      return true;
    } catch (err) {
      this.#d.log.warn('lease not revoked', { lease: held.lease.id, reason, err: String(err) });
      return false;
    }
  }
}

/**
 * Who may share a credential: the holder at this upstream, for session
 * granularity only within the session, and for a credential derived from the
 * caller's token only with that token.
 */
function reuseKey(backend: CredentialBackend, req: CredentialRequest): string {
  const session = backend.granularity === 'session' ? req.sessionKey : '';
  const token =
    backend.boundToSubjectToken && req.subjectToken
      ? createHash('sha256').update(req.subjectToken).digest('base64url')
      : '';
  return `${req.upstream}\0${req.principal}\0${session}\0${token}`;
}

/**
 * A backend's lease must be the one asked for (id, holder, upstream, kind,
 * session) and live; one nobody can recall must end within a minute.
 */
function checkIssued(
  lease: Lease,
  req: CredentialRequest,
  leaseId: string,
  backend: CredentialBackend,
  now: number,
) {
  const { kind } = backend;
  if (
    lease.id !== leaseId ||
    lease.holder !== req.principal ||
    lease.upstream !== req.upstream ||
    lease.backend !== kind ||
    lease.sessionKey !== req.sessionKey ||
    !(lease.expiresAt > now) ||
    (backend.selfExpiring && lease.expiresAt - now > MAX_SELF_EXPIRING_MS)
  )
    throw unavailable(`${kind} backend issued a lease that is not the one asked for`);
}

/**
 * A backend's own typed refusals reach the caller and the log as they are
 * (each has its documented status and public message); anything else a
 * backend throws is ERR_CREDENTIAL_UNAVAILABLE.
 */
const BACKEND_REFUSALS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'ERR_CREDENTIAL_UNAVAILABLE',
  'ERR_TOKEN_EXCHANGE_UNAVAILABLE',
  'ERR_TOKEN_EXCHANGE_DENIED',
  'ERR_TOKEN_EXCHANGE_INVALID',
]);

const unavailable = (message: string, cause?: unknown): PortcullisError =>
  new PortcullisError('ERR_CREDENTIAL_UNAVAILABLE', message, cause === undefined ? {} : { cause });
