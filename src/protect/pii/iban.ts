/**
 * IBANs, electronic (`DE89370400440532013000`) or printed in groups of four
 * (`DE89 3704 0044 0532 0130 00`): two capitals and two digits at the start
 * of a word, then exactly the registered length for that country, then the
 * end of the word; mod 97 decides.
 */
import type { TextFinding } from '../types.ts';
import { ibanLength, isIban } from './validators.ts';

const isUpper = (c: number): boolean => c >= 65 && c <= 90;
const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isAlnum = (c: number): boolean => isUpper(c) || isDigit(c) || (c >= 97 && c <= 122);

/** Every unit in turn: the oracle of the shared pass (`Sweep`), which calls the same step at fewer units; not on the hot path. */
export function scanIbans(text: string, out: TextFinding[]): void {
  const n = text.length - 3;
  let i = 0;
  while (i < n) i = isUpper(text.charCodeAt(i)) ? ibanAt(text, i, out) : i + 1;
}

/** Units an IBAN starts with. */
export const isIbanStart = isUpper;

/**
 * The IBAN that may start at `i` (pushed to `out` if valid); returns where
 * the next one can start. One step of `scanIbans`, for a pass that looks at
 * every unit anyway; `i` must be before the last three units.
 */
export function ibanAt(text: string, i: number, out: TextFinding[]): number {
  if (!isUpper(text.charCodeAt(i)) || !isUpper(text.charCodeAt(i + 1))) return i + 1;
  if (!isDigit(text.charCodeAt(i + 2)) || !isDigit(text.charCodeAt(i + 3))) return i + 1;
  if (i > 0 && (isAlnum(text.charCodeAt(i - 1)) || text.charCodeAt(i - 1) === 95)) return i + 1;
  const length = ibanLength(text.slice(i, i + 2));
  if (length === undefined) return i + 1;
  const end = ibanEnd(text, i, length);
  if (end > 0 && isIban(text.slice(i, end))) {
    out.push({ kind: 'pii', type: 'iban', start: i, end });
    return end;
  }
  return i + 1;
}

/** Where `length` alphanumerics from `start` end (single spaces allowed only every four), or -1. */
function ibanEnd(text: string, start: number, length: number): number {
  let count = 0;
  let j = start;
  while (j < text.length && count < length) {
    const c = text.charCodeAt(j);
    if (isUpper(c) || isDigit(c)) {
      count++;
      j++;
    } else if (c === 32 && count % 4 === 0 && j + 1 < text.length && isAlnum(text.charCodeAt(j + 1))) {
      j++;
    } else {
      return -1;
    }
  }
  if (count < length) return -1;
  if (j < text.length && (isAlnum(text.charCodeAt(j)) || text.charCodeAt(j) === 95)) return -1;
  return j;
}
