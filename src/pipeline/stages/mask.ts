import type { JsonObject, JsonRpcResponse } from '../../jsonrpc.ts';
import type { Logger } from '../../observability/log.ts';
import { checkFailed, type DataProtection, type MaskTarget } from '../../protect/service.ts';
import type { CallContext } from '../context.ts';
import { fail, type Stage } from '../runner.ts';

export interface MaskStageDeps {
  readonly protection: DataProtection;
  /** Marks the caller's history (`context.session.sensitiveRead`). */
  readonly markSensitive: (principalId: string) => void;
  readonly log: Logger;
}

/**
 * Terminal, after inspect-result (so what is scanned is what the client
 * would get) and before the outcome record (which keeps type -> count):
 * an upstream's answer is masked when its decision carries `mask` or config
 * asks for it, and scanned otherwise. A result that holds secrets or personal
 * data marks its reader, so rules on `context.session.sensitiveRead` apply
 * to its later calls in any session. A masking fault or a scan bound hit
 * withholds the answer (ERR_RESULT_WITHHELD); it never passes unmasked.
 */
export function maskStage(deps: MaskStageDeps): Stage {
  return {
    name: 'mask',
    run(ctx: CallContext) {
      const route = ctx.route;
      const res = ctx.response;
      if (route?.kind !== 'upstream' || !res || ctx.error) return;
      try {
        check(deps, ctx, route.upstream, res);
      } catch (err) {
        // The runner would relay the answer as it is after a throw: withhold it here instead.
        fail(ctx, checkFailed(err));
      }
    },
  };
}

function check(deps: MaskStageDeps, ctx: CallContext, upstream: string, res: JsonRpcResponse): void {
  const field = res.result !== undefined ? 'result' : 'error';
  const mode = deps.protection.modeFor(targetOf(ctx, upstream));
  const { check: out, sensitive } = deps.protection.checkResult(res[field], mode);
  ctx.masked = { mode: out.mode, outcome: out.outcome, summary: out.summary };
  if (sensitive) deps.markSensitive(ctx.principal.id);
  if (out.outcome === 'withheld') {
    deps.log.warn('result withheld', {
      callId: ctx.callId,
      upstream,
      code: out.error.code,
      masked: out.summary,
    });
    fail(ctx, out.error);
    return;
  }
  if (out.outcome === 'masked') ctx.response = withField(res, field, out.value);
}

function targetOf(ctx: CallContext, upstream: string): MaskTarget {
  const target = ctx.callInput?.target;
  return {
    upstream,
    tool: target?.kind === 'tool' ? { name: target.tool.name, tier: target.tool.tier } : undefined,
    obligation: ctx.decision?.obligations.includes('mask') ?? false,
  };
}

const withField = (res: JsonRpcResponse, field: 'result' | 'error', value: unknown): JsonRpcResponse =>
  ({ ...res, [field]: value as JsonObject }) as JsonRpcResponse;
