import { randomUUID } from 'node:crypto';
import type { LoadedConfig } from '../config/load.ts';
import { type Logger, silentLogger } from '../observability/log.ts';
import { type AuditConfig, auditSchema } from './config.ts';
import { EgressAggregator, type EgressAttempt } from './egress.ts';
import { auditSetup, type OpenAudit, openAudit } from './open.ts';
import type { PolicySetChange } from './policy-set-records.ts';
import { PolicySetRecords } from './policy-sets.ts';
import { item } from './records.ts';
import { type Refusal, RefusalAggregator } from './refusals.ts';
import type { AppendItem } from './store.ts';

export interface AuditServiceOptions {
  /** How refusals at the door are aggregated (the config's `audit.refusals`). */
  readonly refusals?: AuditConfig['refusals'];
  /** How sandboxed upstreams' connections are aggregated (the config's `audit.egress`). */
  readonly egress?: AuditConfig['egress'];
  readonly now?: () => number;
  readonly log?: Logger;
}

/**
 * The gateway's handle on its audit log. Opening may be asynchronous (PostgreSQL);
 * until it is open, and if it never opens, appends fail and calls are denied.
 */
export class AuditService {
  readonly ready: Promise<OpenAudit>;
  private readonly refusals: RefusalAggregator;
  private readonly egress: EgressAggregator;
  private readonly policySets: PolicySetRecords;
  /** The log once open, for what must be answered without waiting (liveness). */
  private opened: OpenAudit | undefined;
  /** The log could not be opened: it is not tried again, so only a restart serves calls again. */
  private openFailed = false;

  constructor(open: () => Promise<OpenAudit>, opts: AuditServiceOptions = {}) {
    this.ready = open();
    this.ready.then(
      (opened) => {
        this.opened = opened;
      },
      () => {
        this.openFailed = true;
      },
    );
    const defaults = auditSchema.parse({});
    const shared = {
      now: opts.now ?? Date.now,
      log: opts.log ?? silentLogger,
      write: async (item: AppendItem) => (await this.ready).log.append(item),
    };
    this.refusals = new RefusalAggregator({ ...shared, ...defaults.refusals, ...opts.refusals });
    this.egress = new EgressAggregator({ ...shared, ...defaults.egress, ...opts.egress });
    this.policySets = new PolicySetRecords({ ...shared, newId: randomUUID });
  }

  static fromConfig(loaded: LoadedConfig, log: Logger, now: () => number = Date.now): AuditService {
    const setup = auditSetup(loaded, log);
    return new AuditService(async () => openAudit(setup, log), {
      refusals: setup.config.refusals,
      egress: setup.config.egress,
      now,
      log,
    });
  }

  /** Appends one record (an approval's or a break-glass window's life) and resolves with its index once durable. */
  async append(record: Record<string, unknown>): Promise<number> {
    return (await this.ready).log.append(item(record));
  }

  /** Counts a request refused at the door; the counts are recorded per interval (see `RefusalAggregator`). */
  recordRefusal(r: Refusal): void {
    this.refusals.add(r);
  }

  /** Counts a sandboxed upstream's connection, allowed or refused; recorded per interval (see `EgressAggregator`). */
  recordEgress(attempt: EgressAttempt): void {
    this.egress.add(attempt);
  }

  /** Records a policy set that went live (or a refused reload); decisions wait for it (`policySetsSettled`). */
  notePolicySet(change: PolicySetChange): void {
    this.policySets.note(change);
  }

  /**
   * Nothing once every policy set noted is durable; else a promise that
   * settles when they are, or rejects (a decision record must not name a set
   * the log does not hold).
   */
  policySetsSettled(): Promise<void> | undefined {
    return this.policySets.settled();
  }

  /** Whether the log is open and takes records (what lets a sandbox's connections out). */
  recordable(): boolean {
    return this.opened !== undefined && this.opened.log.broken === undefined;
  }

  /** Whether the log refuses every append until the gateway restarts (it never opened, a failed flush, a lost file). */
  needsRestart(): boolean {
    return this.openFailed || this.opened?.log.broken !== undefined;
  }

  /** Rejects when a record could not be appended now (the readiness probe; see `AuditLog.probe`). */
  async probe(): Promise<void> {
    await (await this.ready).log.probe();
  }

  /** Writes the refusals and connections counted so far, then closes the log. */
  async close(): Promise<void> {
    await Promise.all([this.refusals.close(), this.egress.close()]);
    const opened = await this.ready.catch(() => undefined);
    await opened?.log.close();
  }
}
