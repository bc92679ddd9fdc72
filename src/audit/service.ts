import type { LoadedConfig } from '../config/load.ts';
import type { Logger } from '../observability/log.ts';
import type { CallContext } from '../pipeline/context.ts';
import { auditSetup, type OpenAudit, openAudit } from './open.ts';

/**
 * The gateway's handle on its audit log. Opening may be asynchronous (PostgreSQL);
 * until it is open, and if it never opens, appends fail and calls are denied.
 */
export class AuditService {
  readonly ready: Promise<OpenAudit>;

  constructor(open: () => Promise<OpenAudit>) {
    this.ready = open();
    this.ready.catch(() => {});
  }

  static fromConfig(loaded: LoadedConfig, log: Logger): AuditService {
    return new AuditService(async () => openAudit(auditSetup(loaded, log), log));
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
