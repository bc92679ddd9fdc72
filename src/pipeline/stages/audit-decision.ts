import { decisionRecord } from '../../audit/records.ts';
import type { AuditService } from '../../audit/service.ts';
import { Denial } from '../../errors.ts';
import type { CallContext } from '../context.ts';
import type { Stage } from '../runner.ts';

/**
 * Starts the commit of the decision record (a crash of the gateway cannot lose
 * a committed record); `decision-stable`, last before forward, waits for it
 * and denies the call if it failed. Meanwhile the stages between go on, so a
 * lease recorded on the way joins the same commit (and, in `record` mode, the
 * same fsync). A stage between that acts on the decision waits here instead:
 * a call let through by break-glass raises its alert next (its record is put
 * on stable storage first), and an approval or a confirmation links to it.
 */
export function auditDecisionStage(audit: AuditService, now: () => number = Date.now): Stage {
  return {
    name: 'audit-decision',
    async run(ctx) {
      let commit: Promise<number>;
      try {
        const open = await audit.ready;
        const record = decisionRecord(ctx, {
          hmacKey: open.hmacKey,
          clearArguments: open.clearArguments,
          now,
        });
        commit = ctx.breakGlassId ? open.log.append(record) : open.log.appendCommitted(record);
      } catch (err) {
        throw notDurable(err);
      }
      ctx.decisionCommit = commit.then((index) => {
        ctx.decisionIndex = index;
        return index;
      });
      // Awaited later (decision-stable, audit-outcome); a failure is never left unobserved.
      ctx.decisionCommit.catch(() => {});
      if (actsOnDecision(ctx)) await ctx.decisionCommit.catch((err) => Promise.reject(notDurable(err)));
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
