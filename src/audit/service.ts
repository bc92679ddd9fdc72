import type { LoadedConfig } from '../config/load.ts';
import type { Logger } from '../observability/log.ts';
import type { CallContext } from '../pipeline/context.ts';
import { auditSetup, type OpenAudit, openAudit } from './open.ts';
import { type Refusal, refusalRecord } from './records.ts';

const REFUSALS_PER_SECOND = 50;

/**
 * The gateway's handle on its audit log. Opening may be asynchronous (PostgreSQL);
 * until it is open, and if it never opens, appends fail and calls are denied.
 */
export class AuditService {
  readonly ready: Promise<OpenAudit>;
  private refusalWindow = 0;
  private refusalsInWindow = 0;
  private refusalsSkipped = 0;

  constructor(open: () => Promise<OpenAudit>) {
    this.ready = open();
    this.ready.catch(() => {});
  }

  static fromConfig(loaded: LoadedConfig, log: Logger): AuditService {
    return new AuditService(async () => openAudit(auditSetup(loaded, log), log));
  }

  /**
   * Records a request refused at the door. Anyone can knock, so at most
   * `REFUSALS_PER_SECOND` are recorded one by one; the rest are counted and the
   * count goes into the next record, so none disappears without a trace.
   */
  async recordRefusal(r: Omit<Refusal, 'notRecordedBefore'>): Promise<void> {
    const second = Math.floor(r.time / 1000);
    if (second !== this.refusalWindow) {
      this.refusalWindow = second;
      this.refusalsInWindow = 0;
    }
    if (++this.refusalsInWindow > REFUSALS_PER_SECOND) {
      this.refusalsSkipped++;
      return;
    }
    const notRecordedBefore = this.refusalsSkipped;
    this.refusalsSkipped = 0;
    const open = await this.ready;
    await open.log.append(refusalRecord({ ...r, notRecordedBefore }));
  }

  async close(): Promise<void> {
    const opened = await this.ready.catch(() => undefined);
    await opened?.log.close();
  }
}

/** Links a call's outcome record to its decision record. */
const decisionIndexes = new WeakMap<CallContext, number>();

export const setDecisionIndex = (ctx: CallContext, index: number): void => {
  decisionIndexes.set(ctx, index);
};

export const decisionIndexOf = (ctx: CallContext): number | null => decisionIndexes.get(ctx) ?? null;
