import type { LoadedConfig } from '../config/load.ts';
import { type Logger, silentLogger } from '../observability/log.ts';
import { type AuditConfig, auditSchema } from './config.ts';
import { auditSetup, type OpenAudit, openAudit } from './open.ts';
import { item } from './records.ts';
import { type Refusal, RefusalAggregator } from './refusals.ts';

export interface AuditServiceOptions {
  /** How refusals at the door are aggregated (the config's `audit.refusals`). */
  readonly refusals?: AuditConfig['refusals'];
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

  constructor(open: () => Promise<OpenAudit>, opts: AuditServiceOptions = {}) {
    this.ready = open();
    this.ready.catch(() => {});
    const defaults = auditSchema.parse({}).refusals;
    this.refusals = new RefusalAggregator({
      intervalMs: opts.refusals?.intervalMs ?? defaults.intervalMs,
      maxAggregates: opts.refusals?.maxAggregates ?? defaults.maxAggregates,
      now: opts.now ?? Date.now,
      log: opts.log ?? silentLogger,
      write: async (item) => (await this.ready).log.append(item),
    });
  }

  static fromConfig(loaded: LoadedConfig, log: Logger, now: () => number = Date.now): AuditService {
    const setup = auditSetup(loaded, log);
    return new AuditService(async () => openAudit(setup, log), {
      refusals: setup.config.refusals,
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

  /** Writes the refusals counted so far, then closes the log. */
  async close(): Promise<void> {
    await this.refusals.close();
    const opened = await this.ready.catch(() => undefined);
    await opened?.log.close();
  }
}
