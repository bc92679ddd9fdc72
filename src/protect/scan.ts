/** Scans every string of a JSON value within bounds; what it found, by path, for masking and for policy. */
import type { Detectors } from './compile.ts';
import { type Leaf, walkLeaves } from './leaves.ts';
import { Swept } from './sweep.ts';
import type { BoundHit, Finding, ScanBounds, ScanResult, TextFinding } from './types.ts';

/**
 * Strings longer than this are scanned in pieces that overlap by `OVERLAP`,
 * with the time bound checked between pieces: one huge string cannot outrun
 * it. A match longer than the overlap that a cut splits is found in two parts,
 * which the masking joins.
 */
const PIECE = 1 << 20;
const OVERLAP = 1 << 16;
/**
 * The time bound is checked after this much work (UTF-16 units, each string
 * counting `STRING_WORK` more): reading the clock after every string cost
 * more than scanning a short one. Past the bound, a scan goes on for at most
 * this much more.
 */
const CLOCK_EVERY = 1 << 14;
const STRING_WORK = 64;
/** Findings of earlier strings left in the scratch list before it is emptied. */
const FOUND_KEPT = 1024;

export function scanValue(detectors: Detectors, value: unknown, bounds: ScanBounds): ScanResult {
  const now = bounds.now ?? (() => performance.now());
  const started = now();
  const overTime = (): boolean => now() - started > bounds.maxMillis;
  const findings: Finding[] = [];
  const found: TextFinding[] = [];
  const swept = new Swept();
  let chars = 0;
  let work = 0;
  let boundHit: BoundHit | undefined;
  const end = walkLeaves(value, bounds.maxDepth, (leaf) => {
    chars += leaf.text.length;
    if (chars > bounds.maxChars) {
      boundHit = { bound: 'chars', limit: bounds.maxChars };
      return false;
    }
    // `found` keeps what earlier strings left in it (a length set to 0 drops the array's storage, and
    // growing it again cost more than the scan of a short string): this string's findings follow `mark`.
    if (found.length > FOUND_KEPT) found.length = 0;
    const mark = found.length;
    scanLeaf(detectors, leaf, overTime, found, swept);
    if (found.length > mark) {
      const path = leaf.path();
      const { encoding } = leaf;
      for (let i = mark; i < found.length; i++) {
        const f = found[i]!;
        findings.push({ kind: f.kind, type: f.type, start: f.start, end: f.end, path, encoding });
      }
    }
    work += leaf.text.length + STRING_WORK;
    if (work < CLOCK_EVERY) return true;
    work = 0;
    if (overTime()) {
      boundHit = { bound: 'time', limit: bounds.maxMillis };
      return false;
    }
    return true;
  });
  if ('tooDeep' in end) boundHit = { bound: 'depth', limit: bounds.maxDepth };
  else if (boundHit === undefined && overTime()) boundHit = { bound: 'time', limit: bounds.maxMillis };
  return { findings, types: typesOf(findings), ...(boundHit ? { boundHit } : {}) };
}

/** One string's findings; a long one piece by piece, stopping once time is up (the caller then reports the bound). */
function scanLeaf(
  detectors: Detectors,
  leaf: Leaf,
  overTime: () => boolean,
  out: TextFinding[],
  swept: Swept,
): void {
  const { text } = leaf;
  if (text.length <= PIECE) {
    detectors.scan(text, leaf.key, out, swept);
    return;
  }
  const seen = new Set<string>();
  for (let from = 0; from < text.length && !overTime(); from += PIECE) {
    const to = Math.min(text.length, from + PIECE + OVERLAP);
    const piece: TextFinding[] = [];
    detectors.scan(text.slice(from, to), undefined, piece, swept);
    for (const f of piece) {
      const shifted = { ...f, start: f.start + from, end: f.end + from };
      const key = `${f.type}:${shifted.start}:${shifted.end}`;
      if (!seen.has(key)) {
        seen.add(key);
        out.push(shifted);
      }
    }
  }
}

/** Type names by kind, as the policy context takes them. */
export function typesOf(findings: readonly Finding[]): ScanResult['types'] {
  const secrets = new Set<string>();
  const pii = new Set<string>();
  for (const f of findings) (f.kind === 'secret' ? secrets : pii).add(f.type);
  return { secrets, pii };
}
