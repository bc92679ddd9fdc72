/** Small, allocation-free looks at the text around a keyword. */

export const isWordUnit = (c: number): boolean =>
  (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;

/** Moves a window start back to the start of the word it cuts, so `\b` there means what it means in the text. */
export function wordStart(text: string, at: number): number {
  let i = at;
  const floor = Math.max(0, at - 64);
  while (i > floor && isWordUnit(text.charCodeAt(i - 1))) i--;
  return i;
}

/** gitleaks' assignment rules allow 50 characters of name before the keyword. */
const NAME_REACH = 50;

/** Where gitleaks' lazy `[\w.-]{0,50}?` name prefix starts a match: as far left as it reaches. */
export function nameStart(text: string, kwStart: number): number {
  let i = kwStart;
  while (i > 0 && kwStart - i < NAME_REACH) {
    const c = text.charCodeAt(i - 1);
    if (!(isWordUnit(c) || c === 46 || c === 45)) break;
    i--;
  }
  return i;
}

const OPERATOR_REACH = 24;

/**
 * Whether an assignment operator can follow a keyword ending at `end`: 20 name
 * characters and 3 quotes or spaces may come first. A cheap necessary
 * condition that spares the regex most prose mentions of "token".
 */
export function operatorFollows(text: string, end: number): boolean {
  const stop = Math.min(text.length, end + OPERATOR_REACH);
  for (let i = end; i < stop; i++) {
    const c = text.charCodeAt(i);
    if (c === 61 || c === 62 || c === 58 || c === 124 || c === 63 || c === 44) return true; // = > : | ? ,
    const space = c === 32 || (c >= 9 && c <= 13);
    if (!(isWordUnit(c) || space || c === 46 || c === 45 || c === 39 || c === 34)) return false;
  }
  return false;
}

export function lineAround(text: string, start: number, end: number): string {
  const from = text.lastIndexOf('\n', start - 1) + 1;
  const nl = text.indexOf('\n', end);
  return text.slice(from, nl < 0 ? text.length : nl);
}
