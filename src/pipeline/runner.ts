import { internal, type PortcullisError } from '../errors.ts';
import { errorResponse } from '../jsonrpc.ts';
import type { CallContext } from './context.ts';

export interface Stage {
  readonly name: string;
  run(ctx: CallContext): void | Promise<void>;
}

export interface PipelineLogger {
  error(msg: string, fields: Record<string, unknown>): void;
}

export interface Pipeline {
  readonly stages: readonly Stage[];
  readonly terminal: readonly Stage[];
  run(ctx: CallContext): Promise<void>;
}

/**
 * Runs `stages` in order until one sets a response or throws; then always runs
 * every `terminal` stage (where the audit attaches), the way a `finally` does.
 * A thrown error becomes a generic JSON-RPC error; its detail stays in `ctx.error`.
 */
export function createPipeline(
  stages: readonly Stage[],
  terminal: readonly Stage[],
  log: PipelineLogger,
  now: () => number = performance.now.bind(performance),
): Pipeline {
  /** A stage that answers synchronously is not awaited: each await is a turn of the microtask queue per call. */
  function runStage(stage: Stage, ctx: CallContext): void | Promise<void> {
    const t0 = now();
    const done = () => {
      ctx.timings[stage.name] = now() - t0;
    };
    let pending: void | Promise<void>;
    try {
      pending = stage.run(ctx);
    } catch (err) {
      done();
      throw err;
    }
    if (!pending) return done();
    return pending.finally(done);
  }

  async function run(ctx: CallContext): Promise<void> {
    try {
      for (const stage of stages) {
        if (ctx.response) break;
        const pending = runStage(stage, ctx);
        if (pending) await pending;
      }
      if (!ctx.response) throw new Error('pipeline ended without a response');
    } catch (err) {
      fail(ctx, internal(err));
    } finally {
      for (const stage of terminal) {
        try {
          const pending = runStage(stage, ctx);
          if (pending) await pending;
        } catch (err) {
          log.error('terminal stage failed', { stage: stage.name, callId: ctx.callId, err: String(err) });
        }
      }
    }
  }
  return { stages, terminal, run };
}

export function fail(ctx: CallContext, error: PortcullisError): void {
  ctx.error = error;
  ctx.response = errorResponse(ctx.request.id, error.toRpcError());
}
