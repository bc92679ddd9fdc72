import { invalidParams, invalidRequest, methodNotFound } from '../../errors.ts';
import { isObject } from '../../jsonrpc.ts';
import { methodSpec, targetParam } from '../../protocol/methods.ts';
import { checkModernEnvelope } from '../../protocol/modern.ts';
import type { CallContext } from '../context.ts';
import type { Stage } from '../runner.ts';

/**
 * Checks the MCP-level shape of a request before anything routes on it: the
 * envelope was checked by the listener; here, targets and the era's rules.
 */
export const parseStage: Stage = {
  name: 'parse',
  run(ctx: CallContext) {
    const { method, params } = ctx.request;
    const spec = methodSpec(method);
    // Methods the 2026-07-28 era removed: a modern client gets 404 / -32601 for them.
    if (ctx.session.era === 'modern' && spec?.era === 'legacy') throw methodNotFound(method);
    const targetKey = targetParam(method);
    if (targetKey !== undefined) {
      const target = params?.[targetKey];
      if (typeof target !== 'string' || target.length === 0)
        throw invalidParams(`${targetKey} must be a non-empty string`);
    }
    if (spec?.arguments && params && 'arguments' in params) {
      if (!isObject(params.arguments)) throw invalidParams('arguments must be an object');
    }
    if (ctx.session.era === 'modern') checkModernEnvelope(ctx.request);
    else if (!ctx.session.initialized && method !== 'initialize' && method !== 'ping') {
      throw invalidRequest(`${method} before initialize`);
    }
  },
};
