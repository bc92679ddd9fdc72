import type { JsonRpcResponse } from '../jsonrpc.ts';
import { stripInvisible } from './invisible.ts';
import { scanResult } from './scanner.ts';

/** What the scanner found in a tool result that scored at or above its upstream's threshold. */
export interface Injection {
  readonly score: number;
  readonly rules: readonly string[];
}

/**
 * An upstream's response on its way back: a tool result is scanned for
 * instructions injected for the model (before anything is removed, so tag
 * characters count); then tag characters and bidi controls are stripped
 * from the whole response, result or error.
 */
export function inspectResponse(
  response: JsonRpcResponse,
  opts: { toolResult: boolean; threshold: number },
): { response: JsonRpcResponse; injection?: Injection } {
  let injection: Injection | undefined;
  if (opts.toolResult && response.result) {
    const scan = scanResult(response.result);
    if (scan.score >= opts.threshold)
      injection = { score: scan.score, rules: scan.findings.map((f) => f.rule) };
  }
  return { response: stripInvisible(response), ...(injection ? { injection } : {}) };
}
