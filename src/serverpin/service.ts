import { type ErrorCode, PortcullisError } from '../errors.ts';
import type { Logger } from '../observability/log.ts';
import type { StoredRecord } from '../state/records.ts';
import type { FileHasher } from './digest.ts';
import type { ServerPinEvents } from './events.ts';
import {
  type ConfigPin,
  configMismatches,
  type Fingerprint,
  fingerprint,
  storedMismatches,
} from './fingerprint.ts';
import { type LaunchInput, type LaunchPlan, resolveLaunch } from './launch.ts';
import { UnverifiableLaunch } from './packages.ts';
import { type ServerPin, type ServerPinStore, serverPinOf } from './store.ts';

/** One stdio upstream's launch, with the pin its config writes (if any). */
export interface PinnedLaunch extends LaunchInput {
  readonly upstream: string;
  readonly pin?: ConfigPin | undefined;
}

/** Where the expected hashes came from: the config, the state store, or this very start (trust on first use). */
export type PinSource = 'config' | 'stored' | 'first-use';

/** What a launch was checked against and how it came out. */
export type Verdict =
  | {
      readonly ok: true;
      readonly plan: LaunchPlan;
      readonly actual: Fingerprint;
      readonly source: PinSource;
      readonly expected: Fingerprint | ConfigPin;
    }
  | {
      readonly ok: false;
      readonly code: Extract<
        ErrorCode,
        | 'ERR_SERVER_PIN_MISMATCH'
        | 'ERR_SERVER_UNVERIFIED'
        | 'ERR_STATE_UNAVAILABLE'
        | 'ERR_AUDIT_UNAVAILABLE'
      >;
      /** For the log and the audit record: which hashes differ, or why nothing could be hashed. */
      readonly reason: string;
      readonly plan?: LaunchPlan | undefined;
      readonly actual?: Fingerprint | undefined;
      readonly source?: PinSource | undefined;
      readonly expected?: Fingerprint | ConfigPin | undefined;
    };

export interface ServerPinsDeps {
  readonly store: ServerPinStore;
  readonly hasher: FileHasher;
  readonly events: ServerPinEvents;
  readonly log: Logger;
  readonly now: () => number;
}

const TRIES = 5;

const isAuditDown = (err: unknown): boolean =>
  err instanceof PortcullisError && err.code === 'ERR_AUDIT_UNAVAILABLE';

/**
 * Server pinning: before a stdio upstream is spawned, the files it would run
 * are hashed and compared with its pin: the config's, else the one in the
 * state store, else (trust on first use) what is there now becomes the pin.
 * A mismatch refuses the start and, once per new fingerprint, raises an alert;
 * a stored pin stays refused until an operator approves (`servers approve`).
 */
export class ServerPins {
  private readonly d: ServerPinsDeps;
  /** The last refused fingerprint alerted per upstream, so a refused upstream alerts once, not per call. */
  private readonly alerted = new Map<string, string>();

  constructor(deps: ServerPinsDeps) {
    this.d = deps;
  }

  /** The launch's plan and fingerprint, now; throws `UnverifiableLaunch` when its code cannot be found and read. */
  async inspect(launch: LaunchInput): Promise<{ plan: LaunchPlan; actual: Fingerprint }> {
    try {
      const plan = await resolveLaunch(launch);
      return { plan, actual: await fingerprint(plan, this.d.hasher) };
    } catch (err) {
      if (err instanceof UnverifiableLaunch) throw err;
      throw new UnverifiableLaunch(`cannot hash: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Checks a launch against its pin; never throws: a refusal is a verdict. */
  async check(launch: PinnedLaunch): Promise<Verdict> {
    let seen: { plan: LaunchPlan; actual: Fingerprint };
    try {
      seen = await this.inspect(launch);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      return this.refused(launch.upstream, { ok: false, code: 'ERR_SERVER_UNVERIFIED', reason });
    }
    if (launch.pin) {
      const differs = configMismatches(seen.actual, launch.pin);
      const base = { ...seen, source: 'config' as const, expected: launch.pin };
      if (differs.length === 0) return this.admitted(launch.upstream, base);
      return this.refused(launch.upstream, {
        ok: false,
        code: 'ERR_SERVER_PIN_MISMATCH',
        reason: differs.join(', '),
        ...base,
      });
    }
    // Fail closed: a pin that cannot be read, or a first pin that cannot be recorded, starts nothing.
    return this.checkStored(launch.upstream, seen).catch((err: unknown) =>
      this.refused(launch.upstream, {
        ok: false,
        code: isAuditDown(err) ? 'ERR_AUDIT_UNAVAILABLE' : 'ERR_STATE_UNAVAILABLE',
        reason: `server pin not checked: ${String(err)}`,
        ...seen,
      }),
    );
  }

  private async checkStored(
    upstream: string,
    seen: { plan: LaunchPlan; actual: Fingerprint },
  ): Promise<Verdict> {
    for (let i = 0; i < TRIES; i++) {
      const rec = await this.d.store.get(upstream);
      if (!rec) {
        if (!(await this.firstUse(upstream, seen.actual))) continue;
        return this.admitted(upstream, { ...seen, source: 'first-use', expected: seen.actual });
      }
      const pin = serverPinOf(rec);
      const base = { ...seen, source: 'stored' as const, expected: pin.pinned };
      const differs = storedMismatches(seen.actual, pin.pinned);
      if (pin.status === 'pinned' && differs.length === 0) return this.admitted(upstream, base);
      if (!(await this.markRefused(rec, pin, seen.actual))) continue;
      const reason = differs.length > 0 ? differs.join(', ') : 'refused until approved';
      return this.refused(upstream, { ok: false, code: 'ERR_SERVER_PIN_MISMATCH', reason, ...base });
    }
    throw new Error(`server pin ${upstream}: changed concurrently too often`);
  }

  private async firstUse(upstream: string, actual: Fingerprint): Promise<boolean> {
    const now = this.d.now();
    const pin: ServerPin = {
      upstream,
      status: 'pinned',
      pinned: actual,
      origin: 'first-use',
      firstSeenAt: now,
      updatedAt: now,
    };
    if (!(await this.d.store.insert(pin, now))) return false;
    await this.d.events.record('first-use', pin, 'gateway');
    return true;
  }

  /** Records the refused fingerprint as pending (once per new one); false when the record moved on meanwhile. */
  private async markRefused(rec: StoredRecord, pin: ServerPin, actual: Fingerprint): Promise<boolean> {
    if (pin.status === 'refused' && pin.pending?.digest === actual.digest) return true;
    const next: ServerPin = { ...pin, status: 'refused', pending: actual, updatedAt: this.d.now() };
    return (await this.d.store.replace(rec, next)) !== undefined;
  }

  private admitted(upstream: string, verdict: Omit<Extract<Verdict, { ok: true }>, 'ok'>): Verdict {
    this.alerted.delete(upstream);
    return { ok: true, ...verdict };
  }

  private refused(upstream: string, verdict: Extract<Verdict, { ok: false }>): Verdict {
    const key = `${verdict.code} ${verdict.actual?.digest ?? verdict.reason}`;
    if (this.alerted.get(upstream) !== key) {
      this.alerted.set(upstream, key);
      this.d.events.alert(upstream, verdict.code, verdict.reason);
    }
    return verdict;
  }
}
