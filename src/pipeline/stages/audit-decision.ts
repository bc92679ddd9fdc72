import { decisionRecord } from '../../audit/records.ts';
import type { AuditService } from '../../audit/service.ts';
import { Denial } from '../../errors.ts';
import type { Stage } from '../runner.ts';

/** Makes the decision record durable before anything is forwarded; if it cannot, the call is denied. */
export function auditDecisionStage(audit: AuditService, now: () => number = Date.now): Stage {
  return {
    name: 'audit-decision',
    async run(ctx) {
      let index: number;
      try {
        const open = await audit.ready;
        index = await open.log.append(
          decisionRecord(ctx, { hmacKey: open.hmacKey, clearArguments: open.clearArguments, now }),
        );
      } catch (err) {
        throw new Denial('ERR_AUDIT_UNAVAILABLE', `decision record not durable: ${String(err)}`, {
          cause: err,
        });
      }
      ctx.decisionIndex = index;
    },
  };
}
