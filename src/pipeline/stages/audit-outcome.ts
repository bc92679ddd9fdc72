import { decisionRecord, outcomeRecord } from '../../audit/records.ts';
import type { AuditService } from '../../audit/service.ts';
import { Denial } from '../../errors.ts';
import { fail, type Stage } from '../runner.ts';

/**
 * Terminal: records how every call ended, linked to its decision record. A call
 * stopped before the decision stage (refused by identity, routing or policy) gets
 * its decision record here, so denials carry who, what and which policies decided.
 * An upstream's answer whose outcome record cannot be made durable (in `overlap`
 * mode: on stable storage, with its decision record) is withheld:
 * the caller gets a generic denial, so nothing leaves that the log cannot prove.
 */
export function auditOutcomeStage(audit: AuditService, now: () => number = Date.now): Stage {
  return {
    name: 'audit-outcome',
    async run(ctx) {
      try {
        const open = await audit.ready;
        const opts = { hmacKey: open.hmacKey, clearArguments: open.clearArguments, now };
        // The decision's commit may still be under way (a call refused between audit-decision and forward).
        let index = ctx.decisionCommit ? await ctx.decisionCommit.catch(() => null) : null;
        if (index === null) {
          // Best effort: a call whose arguments cannot even be canonicalised still gets its outcome.
          index = await Promise.resolve()
            // Never ahead of the record of the policy set it names.
            .then(() => audit.policySetsSettled())
            .then(() => open.log.append(decisionRecord(ctx, opts)))
            .catch(() => null);
        }
        const outcome = await open.log.append(outcomeRecord(ctx, index, opts));
        // Overlap mode: the answer leaves only once both records are on stable storage (the flush covers every earlier entry).
        if (open.log.holdsAnswers) await open.log.stable(outcome);
      } catch (err) {
        // Whatever the upstream answered, result or error, stays here; a denial of the gateway's own goes out.
        if (!ctx.error) {
          fail(
            ctx,
            new Denial('ERR_AUDIT_UNAVAILABLE', `outcome record not durable: ${String(err)}`, {
              cause: err,
            }),
          );
        }
        throw err;
      }
    },
  };
}
