/**
 * The longest text an RE2 pattern can match, in UTF-16 units (Infinity when
 * a `*`, `+` or `{n,}` makes it unbounded): how wide a window around a
 * keyword must be for a rule to see every match that holds it. An
 * over-estimate is safe (a wider window), so anything that may match a
 * character outside the BMP (`.`, a negated class, `\p{…}`) counts two units.
 */

const WIDE = 2;

interface Cursor {
  readonly src: string;
  i: number;
}

export function maxMatchLength(pattern: string): number {
  const cursor: Cursor = { src: pattern, i: 0 };
  const length = alternation(cursor);
  return cursor.i < pattern.length ? Number.POSITIVE_INFINITY : length;
}

function alternation(c: Cursor): number {
  let best = sequence(c);
  while (c.src[c.i] === '|') {
    c.i++;
    best = Math.max(best, sequence(c));
  }
  return best;
}

function sequence(c: Cursor): number {
  let total = 0;
  while (c.i < c.src.length && c.src[c.i] !== '|' && c.src[c.i] !== ')') {
    total += quantified(c, atom(c));
  }
  return total;
}

/** One atom's length; zero-width for anchors, assertions and flag settings. */
function atom(c: Cursor): number {
  const ch = c.src[c.i]!;
  if (ch === '(') {
    c.i++;
    if (c.src[c.i] === '?') {
      c.i++;
      if (c.src[c.i] === 'P' || c.src[c.i] === '<') {
        c.i = c.src.indexOf('>', c.i) + 1; // (?P<name> or (?<name>
      } else {
        while (/[a-zA-Z-]/.test(c.src[c.i] ?? '')) c.i++; // flags
        if (c.src[c.i++] === ')') return 0; // (?i): no text of its own
      }
    }
    const inner = alternation(c);
    c.i++; // ')'
    return inner;
  }
  if (ch === '[') {
    const from = c.i;
    skipClass(c);
    const body = c.src.slice(from, c.i);
    return body.startsWith('[^') || /\\[pPDSW]/.test(body) ? WIDE : 1;
  }
  if (ch === '\\') {
    const next = c.src[c.i + 1] ?? '';
    c.i += 2;
    if ('bBAzZ'.includes(next)) return 0;
    if (next === 'x' && c.src[c.i] === '{') c.i = c.src.indexOf('}', c.i) + 1;
    else if (next === 'x') c.i += 2;
    else if ((next === 'p' || next === 'P') && c.src[c.i] === '{') c.i = c.src.indexOf('}', c.i) + 1;
    else if (next === 'p' || next === 'P') c.i += 1;
    return 'pPDSWx'.includes(next) ? WIDE : 1;
  }
  c.i++;
  if (ch === '^' || ch === '$') return 0;
  return ch === '.' ? WIDE : 1;
}

function skipClass(c: Cursor): void {
  c.i++;
  if (c.src[c.i] === '^') c.i++;
  if (c.src[c.i] === ']') c.i++;
  while (c.i < c.src.length && c.src[c.i] !== ']') {
    if (c.src.startsWith('[:', c.i)) c.i = c.src.indexOf(':]', c.i) + 2;
    else c.i += c.src[c.i] === '\\' ? 2 : 1;
  }
  c.i++;
}

function quantified(c: Cursor, length: number): number {
  const q = c.src[c.i];
  let result = length;
  if (q === '*' || q === '+') {
    c.i++;
    result = length === 0 ? 0 : Number.POSITIVE_INFINITY;
  } else if (q === '?') {
    c.i++;
  } else if (q === '{') {
    const close = c.src.indexOf('}', c.i);
    const m = /^\{(\d+)(,(\d*))?\}$/.exec(c.src.slice(c.i, close + 1));
    if (!m) return length; // a literal '{'
    c.i = close + 1;
    const max = m[2] === undefined ? Number(m[1]) : m[3] === '' ? Number.POSITIVE_INFINITY : Number(m[3]);
    result = length === 0 ? 0 : length * max;
  } else {
    return length;
  }
  if (c.src[c.i] === '?') c.i++; // lazy
  return result;
}
