/** Scans every string of a JSON value within bounds; what it found, by path, for masking and for policy. */
import type { Detectors } from './compile.ts';
import { type Leaf, leavesOf } from './leaves.ts';
import type { BoundHit, Finding, ScanBounds, ScanResult, TextFinding } from './types.ts';

export function scanValue(detectors: Detectors, value: unknown, bounds: ScanBounds): ScanResult {
  const now = bounds.now ?? (() => performance.now());
  const started = now();
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
    const found = scanLeaf(detectors, leaf);
    if (found.length > 0) {
      const path = leaf.path();
      for (const f of found) findings.push({ ...f, path, encoding: leaf.encoding });
    }
    if (now() - started > bounds.maxMillis) {
      boundHit = { bound: 'time', limit: bounds.maxMillis };
      break;
    }
  }
  return { findings, types: typesOf(findings), ...(boundHit ? { boundHit } : {}) };
}

/**
 * One string's findings. The secret rules see `"name": "value"` when the
 * property name holds a keyword, so `{"api_key": "…"}` reads like the
 * assignment it is; offsets are mapped back into the value.
 */
function scanLeaf(detectors: Detectors, leaf: Leaf): TextFinding[] {
  const out: TextFinding[] = [];
  const secrets = detectors.secrets;
  if (secrets) {
    if (leaf.key !== undefined && secrets.hasKeyword(leaf.key)) {
      const prefix = `"${leaf.key}": "`;
      const found: TextFinding[] = [];
      secrets.scan(`${prefix}${leaf.text}"`, found);
      for (const f of found) {
        const start = Math.max(0, f.start - prefix.length);
        const end = Math.min(leaf.text.length, f.end - prefix.length);
        if (end > start) out.push({ ...f, start, end });
      }
    } else {
      secrets.scan(leaf.text, out);
    }
  }
  detectors.scanNonSecret(leaf.text, out);
  return out;
}

/** Type names by kind, as the policy context takes them. */
export function typesOf(findings: readonly Finding[]): ScanResult['types'] {
  const secrets = new Set<string>();
  const pii = new Set<string>();
  for (const f of findings) (f.kind === 'secret' ? secrets : pii).add(f.type);
  return { secrets, pii };
}
