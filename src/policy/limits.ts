import { isObject } from '../jsonrpc.ts';

export interface ArgumentLimits {
  maxArgumentBytes: number;
  maxDepth: number;
}

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
    if (Array.isArray(v)) for (const x of v) stack.push({ v: x, d: d + 1 });
    else if (isObject(v)) for (const x of Object.values(v)) stack.push({ v: x, d: d + 1 });
  }
  if (Buffer.byteLength(JSON.stringify(value) ?? '') > limits.maxArgumentBytes) {
    return `arguments larger than ${limits.maxArgumentBytes} bytes`;
  }
  return undefined;
}
