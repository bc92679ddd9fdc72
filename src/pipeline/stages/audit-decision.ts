import { decisionRecord } from '../../audit/records.ts';
import type { AuditService } from '../../audit/service.ts';
import { Denial } from '../../errors.ts';
import type { Stage } from '../runner.ts';

/**
 * Commits the decision record (a crash of the gateway cannot lose it); if it
 * cannot, the call is denied. Its flush to stable storage waits for
 * `decision-stable`, just before forward, so a lease recorded on the way takes
 * both there in one fsync. A call let through by break-glass raises its alert
 * next, so its record is flushed here.
 */
export function auditDecisionStage(audit: AuditService, now: () => number = Date.now): Stage {
  return {
    name: 'audit-decision',
    async run(ctx) {
      let index: number;
      try {
        const open = await audit.ready;
        const record = decisionRecord(ctx, {
          hmacKey: open.hmacKey,
          clearArguments: open.clearArguments,
          now,
        });
        index = await (ctx.breakGlassId ? open.log.append(record) : open.log.appendCommitted(record));
      } catch (err) {
        throw new Denial('ERR_AUDIT_UNAVAILABLE', `decision record not durable: ${String(err)}`, {
          cause: err,
        });
      }
      ctx.decisionIndex = index;
    },
  };
}

/**
 * Last before forward: the decision record is as durable as the audit mode
 * promises for a forwarded call (in `record` mode on stable storage), or the
 * call is denied and never sent.
 */
export function decisionStableStage(audit: AuditService): Stage {
  return {
    name: 'decision-stable',
    async run(ctx) {
      if (ctx.decisionIndex === undefined)
        throw new Denial('ERR_AUDIT_UNAVAILABLE', 'no decision record for a call about to be forwarded');
      try {
        const open = await audit.ready;
        await open.log.beforeForward(ctx.decisionIndex);
      } catch (err) {
        throw new Denial('ERR_AUDIT_UNAVAILABLE', `decision record not durable: ${String(err)}`, {
          cause: err,
        });
      }
    },
  };
}
