import { decisionRecord, outcomeRecord } from '../../audit/records.ts';
import { type AuditService, decisionIndexOf } from '../../audit/service.ts';
import type { Stage } from '../runner.ts';

/**
 * Terminal: records how every call ended, linked to its decision record. A call
 * stopped before the decision stage (refused by identity, routing or policy) gets
 * its decision record here, so denials carry who, what and which policies decided.
 */
export function auditOutcomeStage(audit: AuditService, now: () => number = Date.now): Stage {
  return {
    name: 'audit-outcome',
    async run(ctx) {
      const open = await audit.ready;
      const opts = { hmacKey: open.hmacKey, clearArguments: open.clearArguments, now };
      let index = decisionIndexOf(ctx);
      if (index === null) {
        // Best effort: a call whose arguments cannot even be canonicalised still gets its outcome.
        index = await Promise.resolve()
          .then(() => open.log.append(decisionRecord(ctx, opts)))
          .catch(() => null);
      }
      await open.log.append(outcomeRecord(ctx, index, opts));
    },
  };
}
