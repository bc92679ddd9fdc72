/**
 * The secretlint snapshot corpus (shared/corpora/secretlint, data written by
 * others) as cases for the secret detectors: every case with an input file,
 * positive when secretlint's snapshot expects findings, negative when it
 * expects none. Shared by the corpus test and bench/masking-bench.ts.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TextFinding } from '../../src/protect/types.ts';

/** Rule folders left out, and why: they test secretlint itself or flag things that are not secrets in content. */
export const EXCLUDED: Readonly<Record<string, string>> = {
  example: "secretlint's demo rule: the word SECRET",
  'filter-comments': "secretlint's disable comments (its ok cases hold secrets on purpose)",
  pattern: 'patterns the user configures',
  'no-dotenv': 'file names',
  'no-k8s-kind-secret': 'file kinds, no inputs',
  'no-homedir': 'home directory paths, not credentials',
};

/** Single cases left out, and why. */
export const EXCLUDED_CASES: Readonly<Record<string, string>> = {
  'basicauth/ok.database-urls-not-detected':
    "negative only for secretlint's basicauth rule: it says its database-connection-string rule flags these URLs",
};

/** Cases named `*allows*` configure a rule's `allows` option to accept the secret they hold. */
const OPTION_CASE = /(?:^|\.)allows/;

export interface CorpusCase {
  readonly name: string;
  readonly text: string;
  /** Expected secret spans, UTF-16 offsets [start, end). */
  readonly expected: readonly (readonly [number, number])[];
}

export function corpusRoot(): string {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const base = process.env.PORTCULLIS_CORPORA ?? join(root, '..', 'shared', 'corpora');
  const dir = join(base, 'secretlint');
  if (!existsSync(dir)) throw new Error(`secretlint corpus not found at ${dir}: set PORTCULLIS_CORPORA`);
  return dir;
}

export function loadCorpus(dir = corpusRoot()): CorpusCase[] {
  const cases: CorpusCase[] = [];
  for (const rule of readdirSync(dir).sort()) {
    if (rule in EXCLUDED || !existsSync(join(dir, rule, '.')) || rule === 'LICENSE') continue;
    for (const name of readdirSync(join(dir, rule)).sort()) {
      if (`${rule}/${name}` in EXCLUDED_CASES || OPTION_CASE.test(name)) continue;
      const folder = join(dir, rule, name);
      const input = readdirSync(folder).find((f) => f.startsWith('input'));
      if (!input) continue;
      const output = JSON.parse(readFileSync(join(folder, 'output.json'), 'utf8')) as {
        messages: { range: [number, number] }[];
      };
      cases.push({
        name: `${rule}/${name}`,
        text: readFileSync(join(folder, input), 'utf8'),
        expected: output.messages.map((m) => m.range),
      });
    }
  }
  return cases;
}

export interface CorpusScore {
  /** Expected spans some finding overlaps, over all expected spans. */
  readonly recall: number;
  readonly found: number;
  readonly expected: number;
  /** Negative cases with any finding, over negative cases. */
  readonly falsePositiveRate: number;
  readonly negatives: number;
  readonly missed: readonly string[];
  readonly falsePositives: readonly string[];
}

export function scoreCorpus(
  cases: readonly CorpusCase[],
  scan: (text: string) => TextFinding[],
): CorpusScore {
  let found = 0;
  let expected = 0;
  let negatives = 0;
  const missed: string[] = [];
  const falsePositives: string[] = [];
  for (const c of cases) {
    const findings = scan(c.text);
    if (c.expected.length === 0) {
      negatives++;
      if (findings.length > 0) {
        falsePositives.push(
          `${c.name}: ${findings.map((f) => `${f.type} ${JSON.stringify(c.text.slice(f.start, f.end))}`).join(', ')}`,
        );
      }
      continue;
    }
    for (const [start, end] of c.expected) {
      expected++;
      if (findings.some((f) => f.start < end && f.end > start)) found++;
      else missed.push(`${c.name} [${start}, ${end}) ${JSON.stringify(c.text.slice(start, end))}`);
    }
  }
  return {
    recall: expected === 0 ? 0 : found / expected,
    found,
    expected,
    falsePositiveRate: negatives === 0 ? 0 : falsePositives.length / negatives,
    negatives,
    missed,
    falsePositives,
  };
}
