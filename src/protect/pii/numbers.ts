/**
 * Numbers that identify someone: payment cards, US SSNs, phone numbers and
 * IPv4 addresses. One pass cuts the text into numeric tokens (digits joined
 * by single spaces, `-`, `.`, `(`, `)` or `/`, at most 48 units, standing
 * alone between non-word characters); each token, or a run of its
 * space-separated parts, is tried against each shape and its check digits.
 * No regex: every step is a bounded loop, so the pass is linear.
 */
import type { TextFinding } from '../types.ts';
import { isCardNumber, isSsn } from './validators.ts';

export type NumberType = 'payment-card' | 'us-ssn' | 'phone' | 'ipv4';

const MAX_TOKEN = 48;
/** A phone number has at most six groups (`+33 1 23 45 67 89`). */
const MAX_PARTS = 6;

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isWord = (c: number): boolean =>
  isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;

/** Every unit in turn: the oracle of the shared pass (`Sweep`), which calls the same step at fewer units; not on the hot path. */
export function scanNumbers(text: string, enabled: ReadonlySet<NumberType>, out: TextFinding[]): void {
  const n = text.length;
  let i = 0;
  while (i < n) i = isNumberStart(text.charCodeAt(i)) ? numberAt(text, i, enabled, out) : i + 1;
}

/** Units a numeric token can start with (a `+` or `(` only when a digit follows: `numberAt` checks). */
export const isNumberStart = (c: number): boolean => isDigit(c) || c === 43 || c === 40;

/**
 * The token that may start at `i` classified (its findings pushed to `out`);
 * returns where the next token can start. One step of `scanNumbers`, for a
 * pass that looks at every unit anyway.
 */
export function numberAt(
  text: string,
  i: number,
  enabled: ReadonlySet<NumberType>,
  out: TextFinding[],
): number {
  const n = text.length;
  const c = text.charCodeAt(i);
  if (!isDigit(c) && !((c === 43 || c === 40) && i + 1 < n && isDigit(text.charCodeAt(i + 1)))) return i + 1;
  // The token's end (after its last digit), and its digits and dots up to there, in one loop.
  const stop = Math.min(n, i + MAX_TOKEN);
  let end = i;
  let digits = 0;
  let dots = 0;
  let dotsToEnd = 0;
  for (let j = i; j < stop; j++) {
    const u = text.charCodeAt(j);
    const k = u < 128 ? TOKEN_UNIT[u]! : 0;
    if (k === DIGIT) {
      digits++;
      end = j + 1;
      dotsToEnd = dots;
      continue;
    }
    if (u === 32) {
      const next = j + 1 < n ? text.charCodeAt(j + 1) : 0;
      if (isDigit(next) || next === 40) continue;
      break;
    }
    if (k === SEPARATOR || (u === 43 && j === i)) {
      if (u === 46) dots++;
      continue;
    }
    break;
  }
  // Fewer than 4 digits, or fewer than 9 and no 3 dots: no part of the token can be a type (`classify`).
  if (digits >= 4 && (digits >= 9 || dotsToEnd >= 3) && end > i && standsAlone(text, i, end))
    classifyToken(text, i, end, enabled, out);
  return Math.max(end, i + 1);
}

const DIGIT = 1;
const SEPARATOR = 2;
/** By ASCII unit: a digit, a separator inside a token (`-`, `.`, `/`, `(`, `)`), or neither. */
const TOKEN_UNIT = new Uint8Array(128);
for (let c = 48; c <= 57; c++) TOKEN_UNIT[c] = DIGIT;
for (const c of '-./()') TOKEN_UNIT[c.charCodeAt(0)] = SEPARATOR;

/** Not glued to a word, an e-mail address or a dotted/dashed run of letters (`v1.2`, `ID-123`). */
function standsAlone(text: string, start: number, end: number): boolean {
  if (start > 0) {
    const p = text.charCodeAt(start - 1);
    if (isWord(p) || p === 64) return false;
    if ((p === 46 || p === 45 || p === 47) && start > 1 && isWord(text.charCodeAt(start - 2))) return false;
  }
  if (end < text.length) {
    const q = text.charCodeAt(end);
    if (isWord(q) || q === 64) return false;
  }
  return true;
}

/** Tries the whole token, then runs of its space-separated parts, longest first from the left. */
function classifyToken(
  text: string,
  start: number,
  end: number,
  enabled: ReadonlySet<NumberType>,
  out: TextFinding[],
): void {
  const token = text.slice(start, end);
  // The whole token is the first run tried when it has few enough parts (it neither starts nor ends with a space).
  let spaces = 0;
  for (let i = 0; i < token.length; i++) if (token.charCodeAt(i) === 32) spaces++;
  if (spaces < MAX_PARTS) {
    const type = classify(token, enabled);
    if (type) {
      out.push({ kind: 'pii', type, start, end });
      return;
    }
  }
  const parts = spaceParts(token);
  let a = 0;
  while (a < parts.length) {
    let next = a + 1;
    for (let b = Math.min(parts.length, a + MAX_PARTS); b > a; b--) {
      const from = parts[a]![0];
      const to = parts[b - 1]![1];
      const type = classify(token.slice(from, to), enabled);
      if (type) {
        out.push({ kind: 'pii', type, start: start + from, end: start + to });
        next = b;
        break;
      }
    }
    a = next;
  }
}

function spaceParts(token: string): [number, number][] {
  const parts: [number, number][] = [];
  let from = 0;
  for (let i = 0; i <= token.length; i++) {
    if (i === token.length || token.charCodeAt(i) === 32) {
      if (i > from) parts.push([from, i]);
      from = i + 1;
    }
  }
  return parts;
}

function classify(s: string, enabled: ReadonlySet<NumberType>): NumberType | undefined {
  let count = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isDigit(c)) count++;
    else if (c === 46) dots++;
  }
  const dotted = dots === 3 && count + dots === s.length;
  // An SSN has 9 digits, a card 12 or more, a phone 10 or more: shorter runs can only be IPv4.
  if (count < 9 && !dotted) return undefined;
  if (dotted && enabled.has('ipv4') && isIpv4(s)) return 'ipv4';
  const digits = count === s.length ? s : digitsOf(s);
  if (enabled.has('us-ssn') && ssnShape(s) && isSsn(digits)) return 'us-ssn';
  if (enabled.has('payment-card') && cardShape(s) && isCardNumber(digits)) return 'payment-card';
  if (enabled.has('phone') && isPhone(s, digits)) return 'phone';
  return undefined;
}

export function isIpv4(s: string): boolean {
  const octets = s.split('.');
  return (
    octets.length === 4 &&
    octets.every((o) => /^\d{1,3}$/.test(o) && Number(o) <= 255 && (o.length === 1 || o[0] !== '0'))
  );
}

/** The digits of `s`, in order. */
function digitsOf(s: string): string {
  let digits = '';
  let from = -1;
  for (let i = 0; i <= s.length; i++) {
    const digit = i < s.length && isDigit(s.charCodeAt(i));
    if (digit && from < 0) from = i;
    else if (!digit && from >= 0) {
      digits += s.slice(from, i);
      from = -1;
    }
  }
  return digits;
}

/** Whether `s[from, to)` is all digits. */
function allDigits(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (!isDigit(s.charCodeAt(i))) return false;
  return true;
}

/** `123-45-6789` or `123 45 6789`. */
const ssnShape = (s: string): boolean =>
  s.length === 11 &&
  (s[3] === '-' || s[3] === ' ') &&
  s[6] === s[3] &&
  allDigits(s, 0, 3) &&
  allDigits(s, 4, 6) &&
  allDigits(s, 7, 11);

/** Digits alone, or in groups of four split by one kind of separator (Amex and Diners: 4-6-5, 4-6-4). */
function cardShape(s: string): boolean {
  if (s.length === 0) return false;
  let hyphen = false;
  let space = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 45) hyphen = true;
    else if (c === 32) space = true;
    else if (!isDigit(c)) return false;
  }
  if (!hyphen && !space) return true;
  if (hyphen && space) return false;
  const groups = runLengths(s, (c) => c !== (hyphen ? 45 : 32));
  if (groups.length === 0) return false;
  const [a, b, c] = groups;
  if (groups.length === 3 && a === 4 && b === 6 && (c === 5 || c === 4)) return true;
  return groups.slice(0, -1).every((g) => g === 4) && groups[groups.length - 1]! <= 4;
}

/**
 * Lengths of the runs of units `inRun` accepts, split at the others; empty
 * when two splitting units meet or one starts or ends `s` (an empty run).
 */
function runLengths(s: string, inRun: (c: number) => boolean): number[] {
  const lengths: number[] = [];
  let length = 0;
  for (let i = 0; i <= s.length; i++) {
    if (i < s.length && inRun(s.charCodeAt(i))) {
      length++;
      continue;
    }
    if (length === 0) return [];
    lengths.push(length);
    length = 0;
  }
  return lengths;
}

/** Lengths of the runs of digits in `s`. */
function digitGroups(s: string): number[] {
  const lengths: number[] = [];
  let length = 0;
  for (let i = 0; i <= s.length; i++) {
    if (i < s.length && isDigit(s.charCodeAt(i))) length++;
    else if (length > 0) {
      lengths.push(length);
      length = 0;
    }
  }
  return lengths;
}

/**
 * International (`+` or `00`, 10 to 15 digits), North American
 * (`(415) 555-0132`, `415-555-0132`, `1-415-555-0132`) or national with a
 * trunk 0 (`020 7946 0958`, `03-1234-5678`, `01 23 45 67 89`), in groups.
 */
export function isPhone(s: string, digits: string): boolean {
  if (s.includes('/') || !parenthesesFit(s)) return false;
  const n = digits.length;
  if (s[0] === '+') return n >= 10 && n <= 15;
  const groups = digitGroups(s);
  if (groups.length < 2) return false;
  if (digits.startsWith('00')) return n >= 11 && n <= 15;
  const shape = groups.join(',');
  const nanp = (d: string) => d[0]! >= '2' && d[3]! >= '2';
  if (n === 10 && shape === '3,3,4') return nanp(digits);
  if (n === 11 && shape === '1,3,3,4' && digits[0] === '1') return nanp(digits.slice(1));
  if (digits[0] === '0' && n >= 10 && n <= 11 && groups.length <= MAX_PARTS) {
    return groups.every((g) => g <= 8) && groups.slice(1).every((g) => g >= 2);
  }
  return false;
}

/** At most one `(…)` pair, holding 1 to 5 digits. */
function parenthesesFit(s: string): boolean {
  const open = s.indexOf('(');
  const close = s.indexOf(')');
  if (open < 0 && close < 0) return true;
  if (open < 0 || close < open || s.indexOf('(', open + 1) >= 0 || s.indexOf(')', close + 1) >= 0)
    return false;
  return close - open - 1 >= 1 && close - open - 1 <= 5 && allDigits(s, open + 1, close);
}
