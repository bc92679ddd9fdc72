/**
 * IPv6 addresses, found from each `::` or `hex:hex`: the run of hex digits,
 * colons and dots around it (at most 45 units, alone between non-word
 * characters) that `net.isIPv6` accepts, with three groups or more, or `::`
 * beside a group of three hex digits or more (so `a::b` in code is no
 * address).
 */
import { isIPv6 } from 'node:net';
import type { TextFinding } from '../types.ts';

const MAX = 45;
const isHex = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
const isPart = (c: number): boolean => isHex(c) || c === 58 || c === 46;
const isWord = (c: number): boolean =>
  (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;

export function scanIpv6(text: string, out: TextFinding[]): void {
  let colon = text.indexOf(':');
  while (colon >= 0) {
    let next = colon + 1;
    const before = colon > 0 ? text.charCodeAt(colon - 1) : 0;
    const after = colon + 1 < text.length ? text.charCodeAt(colon + 1) : 0;
    if ((isHex(before) || before === 58) && (isHex(after) || after === 58)) {
      let start = colon;
      while (start > 0 && colon - start < MAX && isPart(text.charCodeAt(start - 1))) start--;
      let end = colon + 1;
      while (end < text.length && end - start < MAX && isPart(text.charCodeAt(end))) end++;
      while (end > colon + 1 && text.charCodeAt(end - 1) === 46) end--;
      const alone =
        (start === 0 || !isWord(text.charCodeAt(start - 1))) &&
        (end === text.length || !isWord(text.charCodeAt(end)));
      if (alone) {
        const candidate = text.slice(start, end);
        if (plausible(candidate) && isIPv6(candidate)) out.push({ kind: 'pii', type: 'ipv6', start, end });
      }
      next = Math.max(end, colon + 1);
    }
    colon = text.indexOf(':', next);
  }
}

function plausible(candidate: string): boolean {
  const groups = candidate.split(':').filter((g) => g !== '');
  if (groups.length >= 3) return true;
  return candidate.includes('::') && groups.some((g) => g.length >= 3);
}
