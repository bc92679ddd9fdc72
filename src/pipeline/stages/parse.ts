import { invalidParams, invalidRequest, methodNotFound } from '../../errors.ts';
import { isObject } from '../../jsonrpc.ts';
import { checkModernEnvelope } from '../../protocol/modern.ts';
import { TARGET_PARAM } from '../../protocol/targets.ts';
import type { CallContext } from '../context.ts';
import type { Stage } from '../runner.ts';

/** Methods the 2026-07-28 era removed: a modern client gets 404 / -32601 for them. */
const LEGACY_ONLY = new Set([
  'initialize',
  'ping',
  'logging/setLevel',
  'resources/subscribe',
  'resources/unsubscribe',
]);

/**
 * Checks the MCP-level shape of a request before anything routes on it: the
 * envelope was checked by the listener; here, targets and the era's rules.
 */
export const parseStage: Stage = {
  name: 'parse',
  run(ctx: CallContext) {
    const { method, params } = ctx.request;
    if (ctx.session.era === 'modern' && LEGACY_ONLY.has(method)) throw methodNotFound(method);
    const targetKey = TARGET_PARAM.get(method);
    if (targetKey !== undefined) {
      const target = params?.[targetKey];
      if (typeof target !== 'string' || target.length === 0)
        throw invalidParams(`${targetKey} must be a non-empty string`);
    }
    if ((method === 'tools/call' || method === 'prompts/get') && params && 'arguments' in params) {
      if (!isObject(params.arguments)) throw invalidParams('arguments must be an object');
    }
    if (ctx.session.era === 'modern') checkModernEnvelope(ctx.request);
    else if (!ctx.session.initialized && method !== 'initialize' && method !== 'ping') {
      throw invalidRequest(`${method} before initialize`);
    }
  },
};
