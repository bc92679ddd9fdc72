/**
 * Secret rules (gitleaks' and the project's), compiled once. One keyword pass
 * over a string picks the rules and where to look; a rule's regex runs only
 * there: in a window as wide as its longest match around the keyword, or,
 * for gitleaks' `name = value` rules, anchored just after the keyword. A DFA
 * test comes first; the spans are computed only on a hit.
 */
import { Allowlist, type Candidate, shannonEntropy } from './allow.ts';
import { KeywordSet } from './keywords.ts';
import type { MatchSpan } from './regex.ts';
import { addWindow, compileRule, type Rule, windowAround } from './rule.ts';
import { isWordUnit, lineAround, nameStart, operatorFollows } from './text.ts';
import type { RuleSet, TextDetector, TextFinding } from './types.ts';

/** Property names whose `hasKeyword` answer is kept. */
const KEYED_MAX = 4096;
const KEYED_LENGTH = 64;

/** First look after a keyword of a `name = value` rule: operator, quotes and a 150-character value fit. */
const TAIL_WINDOW = 200;

/** Where a rule looks: merged windows [from, to), flat, or keyword ends for a tail rule. */
interface Plan {
  readonly windows: number[];
  readonly tails: number[];
}

export class SecretDetector implements TextDetector {
  private readonly rules: readonly Rule[];
  private readonly keywords: KeywordSet;
  /** Rule indexes per keyword id. */
  private readonly rulesOf: readonly (readonly number[])[];
  /** `hasKeyword`'s answers by property name. */
  private readonly keyed = new Map<string, boolean>();

  constructor(sets: readonly RuleSet[]) {
    const rules: Rule[] = [];
    const keywordsOf: (readonly string[])[] = [];
    for (const set of sets) {
      const global = set.allow ? new Allowlist(set.allow) : undefined;
      for (const data of set.rules) {
        if (data.regex === undefined || data.path !== undefined || data.keywords.length === 0) continue;
        rules.push(compileRule(data, global));
        keywordsOf.push(data.keywords);
      }
    }
    this.rules = rules;
    const ids = new Map<string, number>();
    const rulesOf: number[][] = [];
    keywordsOf.forEach((keywords, index) => {
      for (const word of keywords.map((k) => k.toLowerCase())) {
        if (!ids.has(word)) {
          ids.set(word, ids.size);
          rulesOf.push([]);
        }
        rulesOf[ids.get(word)!]!.push(index);
      }
    });
    this.keywords = new KeywordSet([...ids.keys()]);
    this.rulesOf = rulesOf;
  }

  get ruleCount(): number {
    return this.rules.length;
  }

  /**
   * Whether `text` (a property name, say) holds any rule's keyword. Property
   * names repeat from row to row: the answers for short ones are kept (a few
   * thousand at most, then forgotten all at once).
   */
  hasKeyword(text: string): boolean {
    if (text.length > KEYED_LENGTH) return this.keywords.test(text);
    let has = this.keyed.get(text);
    if (has === undefined) {
      has = this.keywords.test(text);
      if (this.keyed.size >= KEYED_MAX) this.keyed.clear();
      this.keyed.set(text, has);
    }
    return has;
  }

  /** The rules' keywords, for a pass over a string that serves other detectors too (`Sweep`). */
  get keywordSet(): KeywordSet {
    return this.keywords;
  }

  scan(text: string, out: TextFinding[]): void {
    const hits: number[] = [];
    this.keywords.scan(text, (word, end) => hits.push(word, end));
    this.scanHits(text, hits, out);
  }

  /** The findings in `text`, given its keyword hits (`word, end` pairs in order of end, as `Sweep` gives them). */
  scanHits(text: string, hits: readonly number[], out: TextFinding[]): void {
    if (hits.length === 0) return;
    const plans = this.plan(text, hits);
    const seen = new Set<string>();
    const found: TextFinding[] = [];
    const emit = (f: TextFinding): void => {
      const key = `${f.type}:${f.start}:${f.end}`;
      if (seen.has(key)) return;
      seen.add(key);
      found.push(f);
    };
    for (const [index, plan] of [...plans].sort(([a], [b]) => this.genericLast(a, b))) {
      const rule = this.rules[index]!;
      let covered = 0;
      for (let i = 0; i < plan.windows.length; i += 2) {
        const to = plan.windows[i + 1]!;
        if (to > covered)
          covered = this.searchWindow(rule, text, Math.max(plan.windows[i]!, covered), to, emit);
      }
      for (let i = 0; i < plan.tails.length; i += 2) {
        const kwEnd = plan.tails[i + 1]!;
        // The catch-all yields to a specific rule anyway: skip it where one already found a value.
        if (rule.id === GENERIC && found.some((f) => f.start >= kwEnd && f.start <= kwEnd + VALUE_REACH))
          continue;
        this.searchTail(rule, text, plan.tails[i]!, kwEnd, emit);
      }
    }
    for (const f of found)
      if (!(f.type === GENERIC && found.some((g) => g.type !== GENERIC && overlap(f, g)))) out.push(f);
  }

  private genericLast(a: number, b: number): number {
    return Number(this.rules[a]!.id === GENERIC) - Number(this.rules[b]!.id === GENERIC) || a - b;
  }

  /** Where each rule must look, by rule index. */
  private plan(text: string, hits: readonly number[]): Map<number, Plan> {
    const plans = new Map<number, Plan>();
    const words = this.keywords.words;
    for (let h = 0; h < hits.length; h += 2) {
      const word = hits[h]!;
      const end = hits[h + 1]!;
      const start = end - words[word]!.length;
      for (const index of this.rulesOf[word]!) {
        const rule = this.rules[index]!;
        let plan = plans.get(index);
        if (!plan) {
          plan = { windows: [], tails: [] };
          plans.set(index, plan);
        }
        if (!rule.windowed) {
          if (plan.windows.length === 0) plan.windows.push(0, text.length);
        } else if (rule.tail) {
          if (operatorFollows(text, end)) plan.tails.push(start, end);
        } else if (
          !(rule.wordStart.has(words[word]!) && start > 0 && isWordUnit(text.charCodeAt(start - 1))) &&
          (rule.near?.(text, start, end) ?? true)
        ) {
          addWindow(plan.windows, ...windowAround(rule, text, start, end));
        }
      }
    }
    return plans;
  }

  /**
   * Runs a rule on text[from, to); an unbounded match reaching a cut end is
   * retried on a window twice as long. Returns where the search ended: later
   * windows start there, so no text is searched twice by one rule.
   */
  private searchWindow(
    rule: Rule,
    text: string,
    from: number,
    to: number,
    emit: (f: TextFinding) => void,
  ): number {
    for (;;) {
      const window = text.slice(from, to);
      if (!rule.re.test(window)) return to;
      const spans: MatchSpan[] = [];
      let cut = false;
      for (const m of rule.re.matches(window, rule.secretGroup)) {
        if (m.end === window.length && to < text.length && rule.reach === Number.POSITIVE_INFINITY) {
          cut = true;
          break;
        }
        spans.push(m);
      }
      if (!cut) {
        for (const m of spans) this.accept(rule, text, from + m.start, from + m.end, from, m, emit);
        return to;
      }
      to = Math.min(text.length, from + (to - from) * 2);
    }
  }

  /** A `name = value` rule after one keyword: its tail anchored at the keyword's end. */
  private searchTail(
    rule: Rule,
    text: string,
    kwStart: number,
    kwEnd: number,
    emit: (f: TextFinding) => void,
  ): void {
    const tail = rule.tail!;
    let to = Math.min(text.length, kwEnd + Math.min(tail.reach + 1, TAIL_WINDOW));
    for (;;) {
      const window = text.slice(kwEnd, to);
      if (!tail.re.test(window)) return;
      const m = tail.re.matches(window, rule.secretGroup).next().value;
      if (!m) return;
      if (m.end === window.length && to < text.length && tail.reach === Number.POSITIVE_INFINITY) {
        to = Math.min(text.length, kwEnd + (to - kwEnd) * 2);
        continue;
      }
      this.accept(rule, text, nameStart(text, kwStart), kwEnd + m.end, kwEnd, m, emit);
      return;
    }
  }

  /** Applies gitleaks' filters (entropy, the set's allowlist, the rule's) to one match. */
  private accept(
    rule: Rule,
    text: string,
    matchStart: number,
    matchEnd: number,
    offset: number,
    m: MatchSpan,
    emit: (f: TextFinding) => void,
  ): void {
    let start = offset + m.secretStart;
    let end = offset + m.secretEnd;
    if (m.secretStart === m.start && m.secretEnd === m.end) {
      while (start < end && text.charCodeAt(start) === 10) start++;
      while (end > start && text.charCodeAt(end - 1) === 10) end--;
    }
    const secret = text.slice(start, end);
    if (secret === '') return;
    if (rule.entropy > 0 && shannonEntropy(secret) <= rule.entropy) return;
    const candidate: Candidate = {
      secret,
      match: text.slice(matchStart, matchEnd),
      line: () => lineAround(text, matchStart, matchEnd),
    };
    if (rule.global?.allows(candidate) || rule.allow.some((a) => a.allows(candidate))) return;
    if (rule.reject?.(candidate.match, secret)) return;
    emit({ kind: 'secret', type: rule.id, start, end });
  }
}

/** gitleaks' catch-all rule: a specific rule's finding on the same text wins over it. */
const GENERIC = 'generic-api-key';

const overlap = (a: TextFinding, b: TextFinding): boolean => a.start < b.end && b.start < a.end;

/** Where a `name = value` rule's value can start after its keyword: 20 name characters, 3 quotes, an operator, 5 more. */
const VALUE_REACH = 32;
