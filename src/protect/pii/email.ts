/**
 * E-mail addresses, found from each `@`: a local part of up to 64 of
 * `A-Za-z0-9._%+-` before it and a domain of dot-separated labels with an
 * alphabetic top-level label after it. Bounded loops, no regex.
 */
import type { TextFinding } from '../types.ts';

const MAX_LOCAL = 64;
const MAX_DOMAIN = 253;

const isAlnum = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const isLocal = (c: number): boolean =>
  isAlnum(c) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45; // . _ % + -
const isDomain = (c: number): boolean => isAlnum(c) || c === 46 || c === 45;
const isAlpha = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);

export function scanEmails(text: string, out: TextFinding[]): void {
  let at = text.indexOf('@');
  while (at >= 0) {
    const end = emailAround(text, at, out);
    at = text.indexOf('@', end > 0 ? end : at + 1);
  }
}

/** The address around the `@` at `at`, pushed to `out`; returns its end, or -1 when there is none. */
function emailAround(text: string, at: number, out: TextFinding[]): number {
  let start = at;
  while (start > 0 && at - start < MAX_LOCAL && isLocal(text.charCodeAt(start - 1))) start--;
  while (start < at && text.charCodeAt(start) === 46) start++;
  if (start === at || text.charCodeAt(at - 1) === 46) return -1;
  if (start > 0 && (isLocal(text.charCodeAt(start - 1)) || insideUrl(text, start))) return -1;
  let end = at + 1;
  while (end < text.length && end - at <= MAX_DOMAIN && isDomain(text.charCodeAt(end))) end++;
  while (end > at + 1 && !isAlnum(text.charCodeAt(end - 1))) end--;
  const tld = lastLabel(text, at + 1, end);
  if (tld < 0 || end - tld < 2 || end - tld > 24) return -1;
  for (let i = tld; i < end; i++) if (!isAlpha(text.charCodeAt(i))) return -1;
  out.push({ kind: 'pii', type: 'email', start, end });
  return end;
}

/**
 * Where the last dot-separated label of the domain text[from, to) starts, or
 * -1 unless it has two labels or more, none empty, longer than 63 or starting
 * with `-`.
 */
function lastLabel(text: string, from: number, to: number): number {
  let labels = 0;
  let label = from;
  for (let i = from; i <= to; i++) {
    if (i < to && text.charCodeAt(i) !== 46) continue;
    if (i === label || i - label > 63 || text.charCodeAt(label) === 45) return -1;
    labels++;
    if (i < to) label = i + 1;
  }
  return labels < 2 ? -1 : label;
}

/** `scheme://user:pass@host`: the part before `@` is a URL's credentials, not a mailbox. */
function insideUrl(text: string, start: number): boolean {
  let i = start - 1;
  const floor = Math.max(0, start - 256);
  while (i > floor) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 10 || c === 9 || c === 34 || c === 39) return false;
    if (c === 47 && text.charCodeAt(i - 1) === 47) return true;
    i--;
  }
  return false;
}
