/** gitleaks' allowlists, compiled: a finding one of them matches is not a secret. */
import { KeywordSet } from './keywords.ts';
import { LinearRegex } from './regex.ts';
import type { AllowlistData } from './types.ts';

/** What an allowlist may look at for one candidate. */
export interface Candidate {
  readonly secret: string;
  readonly match: string;
  /** The match's line(s); computed only when an allowlist asks for it. */
  readonly line: () => string;
}

export class Allowlist {
  private readonly and: boolean;
  private readonly target: 'secret' | 'match' | 'line';
  private readonly regexes: readonly LinearRegex[];
  private readonly stopwords: KeywordSet | undefined;
  /** An AND list naming paths can never hold: results have no path. */
  private readonly needsPath: boolean;

  constructor(data: AllowlistData) {
    this.and = data.condition === 'AND';
    this.target = data.regexTarget ?? 'secret';
    this.regexes = (data.regexes ?? []).map((r) => new LinearRegex(r));
    this.stopwords = data.stopwords?.length ? new KeywordSet(data.stopwords) : undefined;
    this.needsPath = (data.paths?.length ?? 0) > 0;
  }

  allows(c: Candidate): boolean {
    const regexHit = (): boolean => {
      if (this.regexes.length === 0) return false;
      const target = this.target === 'secret' ? c.secret : this.target === 'match' ? c.match : c.line();
      return target !== '' && this.regexes.some((re) => re.test(target));
    };
    const stopwordHit = (): boolean => this.stopwords?.test(c.secret) === true;
    if (!this.and) return regexHit() || stopwordHit();
    if (this.needsPath) return false;
    const checks: (() => boolean)[] = [];
    if (this.regexes.length) checks.push(regexHit);
    if (this.stopwords) checks.push(stopwordHit);
    return checks.length > 0 && checks.every((check) => check());
  }
}

/** Shannon entropy in bits per character (code point), as gitleaks computes it. */
export function shannonEntropy(text: string): number {
  if (text === '') return 0;
  const counts = new Map<number, number>();
  let n = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    counts.set(cp, (counts.get(cp) ?? 0) + 1);
    n++;
  }
  let entropy = 0;
  for (const count of counts.values()) {
    const p = count / n;
    entropy -= p * Math.log2(p);
  }
  return entropy;
}
