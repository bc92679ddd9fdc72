import { isObject } from '../../jsonrpc.ts';
import { checkParamHeaders, headerArguments, paramHeaderValues } from '../../protocol/modern.ts';
import type { Aggregator } from '../../upstream/aggregate.ts';
import type { CallContext } from '../context.ts';
import type { Stage } from '../runner.ts';

/**
 * Whoever reads the body checks `Mcp-Param-*` against it (SEP-2243), using
 * the tool's own schema. What goes upstream is derived from the body for the
 * headers that schema declares; any other `Mcp-Param-*` the client sent stops
 * here. Only a `tools/call` that came with HTTP headers has any to check.
 */
export function paramHeadersStage(agg: Pick<Aggregator, 'toolSchema'>): Stage {
  return {
    name: 'param-headers',
    async run(ctx: CallContext) {
      const headers = ctx.requestHeaders;
      if (!headers || ctx.request.method !== 'tools/call') return;
      const params = ctx.request.params;
      const schema = await agg.toolSchema(ctx.session, String(params?.name), ctx.sink);
      const args = isObject(params?.arguments) ? params.arguments : {};
      checkParamHeaders(args, schema, headers);
      const derived = paramHeaderValues(headerArguments(schema), args);
      if (Object.keys(derived).length > 0) ctx.forwardHeaders = derived;
    },
  };
}
