/** Scans every string of a JSON value within bounds; what it found, by path, for masking and for policy. */
import type { Detectors } from './compile.ts';
import { type Leaf, leavesOf } from './leaves.ts';
import type { BoundHit, Finding, ScanBounds, ScanResult, TextFinding } from './types.ts';

/**
 * Strings longer than this are scanned in pieces that overlap by `OVERLAP`,
 * with the time bound checked between pieces: one huge string cannot outrun
 * it. A match longer than the overlap that a cut splits is found in two parts,
 * which the masking joins.
 */
const PIECE = 1 << 20;
const OVERLAP = 1 << 16;

export function scanValue(detectors: Detectors, value: unknown, bounds: ScanBounds): ScanResult {
  const now = bounds.now ?? (() => performance.now());
  const started = now();
  const overTime = (): boolean => now() - started > bounds.maxMillis;
  const findings: Finding[] = [];
  let chars = 0;
  let boundHit: BoundHit | undefined;
  for (const visit of leavesOf(value, bounds.maxDepth)) {
    if ('tooDeep' in visit) {
      boundHit = { bound: 'depth', limit: bounds.maxDepth };
      break;
    }
    const { leaf } = visit;
    chars += leaf.text.length;
    if (chars > bounds.maxChars) {
      boundHit = { bound: 'chars', limit: bounds.maxChars };
      break;
    }
    const found = scanLeaf(detectors, leaf, overTime);
    if (found.length > 0) {
      const path = leaf.path();
      for (const f of found) findings.push({ ...f, path, encoding: leaf.encoding });
    }
    if (overTime()) {
      boundHit = { bound: 'time', limit: bounds.maxMillis };
      break;
    }
  }
  return { findings, types: typesOf(findings), ...(boundHit ? { boundHit } : {}) };
}

/** One string's findings; a long one piece by piece, stopping once time is up (the caller then reports the bound). */
function scanLeaf(detectors: Detectors, leaf: Leaf, overTime: () => boolean): TextFinding[] {
  const { text } = leaf;
  if (text.length <= PIECE) return scanText(detectors, text, leaf.key);
  const out: TextFinding[] = [];
  const seen = new Set<string>();
  for (let from = 0; from < text.length && !overTime(); from += PIECE) {
    const to = Math.min(text.length, from + PIECE + OVERLAP);
    for (const f of scanText(detectors, text.slice(from, to), undefined)) {
      const shifted = { ...f, start: f.start + from, end: f.end + from };
      const key = `${f.type}:${shifted.start}:${shifted.end}`;
      if (!seen.has(key)) {
        seen.add(key);
        out.push(shifted);
      }
    }
  }
  return out;
}

/**
 * The findings in one string. The secret rules see `"name": "value"` when
 * the property name holds a keyword, so `{"api_key": "…"}` reads like the
 * assignment it is; offsets are mapped back into the value.
 */
function scanText(detectors: Detectors, text: string, key: string | undefined): TextFinding[] {
  const out: TextFinding[] = [];
  const secrets = detectors.secrets;
  if (secrets) {
    if (key !== undefined && secrets.hasKeyword(key)) {
      const prefix = `"${key}": "`;
      const found: TextFinding[] = [];
      secrets.scan(`${prefix}${text}"`, found);
      for (const f of found) {
        const start = Math.max(0, f.start - prefix.length);
        const end = Math.min(text.length, f.end - prefix.length);
        if (end > start) out.push({ ...f, start, end });
      }
    } else {
      secrets.scan(text, out);
    }
  }
  detectors.scanNonSecret(text, out);
  return out;
}

/** Type names by kind, as the policy context takes them. */
export function typesOf(findings: readonly Finding[]): ScanResult['types'] {
  const secrets = new Set<string>();
  const pii = new Set<string>();
  for (const f of findings) (f.kind === 'secret' ? secrets : pii).add(f.type);
  return { secrets, pii };
}
