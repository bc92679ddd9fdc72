import { isObject } from '../../jsonrpc.ts';

export interface ArgumentLimits {
  maxArgumentBytes: number;
  maxDepth: number;
}

/**
 * JSON may escape half a surrogate pair; such a string is not Unicode text, so
 * policy cannot read it and the audit log cannot canonicalise it (RFC 8785).
 */
export const NOT_UNICODE = 'a string is not well-formed Unicode (it holds a lone surrogate)';

/**
 * Why a value is out of bounds, or undefined. Walks iteratively so a hostile
 * nesting depth cannot exhaust the stack before the check says no.
 */
export function boundsProblem(value: unknown, limits: ArgumentLimits): string | undefined {
  const stack: { v: unknown; d: number }[] = [{ v: value, d: 0 }];
  let nodes = 0;
  while (stack.length > 0) {
    const { v, d } = stack.pop()!;
    if (d > limits.maxDepth) return `arguments nested deeper than ${limits.maxDepth}`;
    if (++nodes > limits.maxArgumentBytes) return 'arguments too large';
    if (typeof v === 'string' && !v.isWellFormed()) return NOT_UNICODE;
    if (Array.isArray(v)) for (const x of v) stack.push({ v: x, d: d + 1 });
    else if (isObject(v)) {
      for (const [k, x] of Object.entries(v)) {
        if (!k.isWellFormed()) return NOT_UNICODE;
        stack.push({ v: x, d: d + 1 });
      }
    }
  }
  if (Buffer.byteLength(JSON.stringify(value) ?? '') > limits.maxArgumentBytes) {
    return `arguments larger than ${limits.maxArgumentBytes} bytes`;
  }
  return undefined;
}
