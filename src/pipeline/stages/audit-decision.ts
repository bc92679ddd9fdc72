import { decisionRecord } from '../../audit/records.ts';
import type { AuditService } from '../../audit/service.ts';
import { Denial } from '../../errors.ts';
import type { CallContext } from '../context.ts';
import type { Stage } from '../runner.ts';

/**
 * Commits the decision record (a crash of the gateway cannot lose a committed
 * record), or the call is denied. Its flush to stable storage is left to
 * `decision-stable`, last before forward, so a lease recorded on the way
 * takes both there in one fsync. Where everything up to forward stays inside
 * the gateway (`localUntilForward`: no credential, or one the gateway issues
 * itself) the commit is not even waited for here: the lease joins it, one
 * commit for both, and decision-stable waits for it. A call whose decision a
 * stage before forward acts on (break-glass's alert, an approval, a
 * confirmation) has its record on stable storage first, as before.
 */
export function auditDecisionStage(
  audit: AuditService,
  now: () => number = Date.now,
  localUntilForward: (ctx: CallContext) => boolean = () => false,
): Stage {
  return {
    name: 'audit-decision',
    async run(ctx) {
      let commit: Promise<number>;
      const actedOn = actsOnDecision(ctx);
      try {
        const open = await audit.ready;
        // The policy set the decision names is in the log first (nothing to wait for unless it just changed).
        const sets = audit.policySetsSettled();
        if (sets) await sets;
        const record = decisionRecord(ctx, {
          hmacKey: open.hmacKey,
          clearArguments: open.clearArguments,
          now,
        });
        commit = actedOn ? open.log.append(record) : open.log.appendCommitted(record);
      } catch (err) {
        throw notDurable(err);
      }
      ctx.decisionCommit = commit.then((index) => {
        ctx.decisionIndex = index;
        return index;
      });
      // Awaited later (decision-stable, audit-outcome); a failure is never left unobserved.
      ctx.decisionCommit.catch(() => {});
      if (actedOn || !localUntilForward(ctx))
        await ctx.decisionCommit.catch((err) => Promise.reject(notDurable(err)));
    },
  };
}

/** Whether a stage before forward acts on this call's decision record: break-glass's alert, an approval's or confirmation's records. */
const actsOnDecision = (ctx: CallContext): boolean =>
  ctx.breakGlassId !== undefined || (ctx.decision?.obligations.length ?? 0) > 0;

/**
 * Last before forward: the decision record is committed and as durable as the
 * audit mode promises for a forwarded call (in `record` mode on stable
 * storage), or the call is denied and never sent.
 */
export function decisionStableStage(audit: AuditService): Stage {
  return {
    name: 'decision-stable',
    async run(ctx) {
      if (!ctx.decisionCommit)
        throw new Denial('ERR_AUDIT_UNAVAILABLE', 'no decision record for a call about to be forwarded');
      try {
        const index = await ctx.decisionCommit;
        const open = await audit.ready;
        await open.log.beforeForward(index);
      } catch (err) {
        throw notDurable(err);
      }
    },
  };
}

const notDurable = (err: unknown): Denial =>
  new Denial('ERR_AUDIT_UNAVAILABLE', `decision record not durable: ${String(err)}`, { cause: err });
