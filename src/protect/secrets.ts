/**
 * Secret rules (gitleaks' and the project's), compiled once: one keyword pass
 * over a string picks the rules and the windows around their keywords; only
 * there does a rule's regex run, first as a DFA test, then for the spans.
 */
import { Allowlist, type Candidate, shannonEntropy } from './allow.ts';
import { KeywordSet } from './keywords.ts';
import { LinearRegex, type MatchSpan } from './regex.ts';
import type { RuleData, RuleSet, TextDetector, TextFinding } from './types.ts';

/** How far before a keyword a match may start (gitleaks' assignment rules allow 50 characters of name). */
const BEFORE = 128;
const AFTER = 512;
/** Armored blocks (PEM, PGP) run from their BEGIN line to their END line. */
const ARMORED_AFTER = 65_536;
/** The shape gitleaks gives `name = value` rules: an operator must follow the keyword closely. */
const ASSIGNMENT = String.raw`(?:[ \t\w.-]{0,20})[\s'"]{0,3}(?:=|>|:{1,3}=|\|\||:|=>|\?=|,)`;
const OPERATOR_REACH = 24;

interface Rule {
  readonly id: string;
  readonly re: LinearRegex;
  readonly secretGroup: number;
  readonly entropy: number;
  readonly allow: readonly Allowlist[];
  /** The set's allowlist, shared by its rules. */
  readonly global: Allowlist | undefined;
  readonly reject: RuleData['reject'];
  /** Every match holds a keyword, so windows around keywords suffice; else the whole string is searched. */
  readonly windowed: boolean;
  readonly assignment: boolean;
  readonly after: number;
}

export class SecretDetector implements TextDetector {
  private readonly rules: readonly Rule[];
  private readonly keywords: KeywordSet;
  /** Rule indexes per keyword id. */
  private readonly rulesOf: readonly (readonly number[])[];

  constructor(sets: readonly RuleSet[]) {
    const rules: Rule[] = [];
    const keywordsOf: (readonly string[])[] = [];
    for (const set of sets) {
      const global = set.allow
        ? new Allowlist({ regexes: set.allow.regexes, stopwords: set.allow.stopwords })
        : undefined;
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
      for (const k of keywords) {
        const word = k.toLowerCase();
        let id = ids.get(word);
        if (id === undefined) {
          id = ids.size;
          ids.set(word, id);
          rulesOf.push([]);
        }
        rulesOf[id]!.push(index);
      }
    });
    this.keywords = new KeywordSet([...ids.keys()]);
    this.rulesOf = rulesOf;
  }

  /** Whether `text` (a property name, say) holds any rule's keyword. */
  hasKeyword(text: string): boolean {
    return this.keywords.test(text);
  }

  get ruleIds(): readonly string[] {
    return this.rules.map((r) => r.id);
  }

  scan(text: string, out: TextFinding[]): void {
    const windows = this.windowsOf(text);
    const seen = new Set<string>();
    windows.forEach((spans, index) => {
      const rule = this.rules[index]!;
      for (let i = 0; i < spans.length; i += 2) {
        for (const f of this.searchWindow(rule, text, spans[i]!, spans[i + 1]!)) {
          const key = `${f.type}:${f.start}:${f.end}`;
          if (seen.has(key)) continue;
          seen.add(key);
          out.push(f);
        }
      }
    });
  }

  /** Per rule index: merged [start, end) windows, flat. */
  private windowsOf(text: string): Map<number, number[]> {
    const windows = new Map<number, number[]>();
    const words = this.keywords.words;
    this.keywords.scan(text, (word, end) => {
      const start = end - words[word]!.length;
      for (const index of this.rulesOf[word]!) {
        const rule = this.rules[index]!;
        if (!rule.windowed) {
          windows.set(index, [0, text.length]);
          continue;
        }
        if (rule.assignment && !operatorFollows(text, end)) continue;
        let spans = windows.get(index);
        if (!spans) {
          spans = [];
          windows.set(index, spans);
        }
        const from = wordStart(text, Math.max(0, start - BEFORE));
        const to = Math.min(text.length, end + rule.after);
        const last = spans.length - 1;
        if (last > 0 && from <= spans[last]!) spans[last] = Math.max(spans[last]!, to);
        else spans.push(from, to);
      }
    });
    return windows;
  }

  /** Runs one rule on text[from, to); a match reaching a cut end is retried on a window twice as long. */
  private searchWindow(rule: Rule, text: string, from: number, to: number): TextFinding[] {
    for (;;) {
      const window = text.slice(from, to);
      if (!rule.re.test(window)) return [];
      const spans: MatchSpan[] = [];
      let cut = false;
      for (const m of rule.re.matches(window, rule.secretGroup)) {
        if (m.end === window.length && to < text.length) {
          cut = true;
          break;
        }
        spans.push(m);
      }
      if (!cut) return spans.flatMap((m) => this.accept(rule, text, from, m));
      to = Math.min(text.length, from + (to - from) * 2);
    }
  }

  private accept(rule: Rule, text: string, offset: number, m: MatchSpan): TextFinding[] {
    let start = offset + m.secretStart;
    let end = offset + m.secretEnd;
    if (m.secretStart === m.start && m.secretEnd === m.end) {
      while (start < end && text.charCodeAt(start) === 10) start++;
      while (end > start && text.charCodeAt(end - 1) === 10) end--;
    }
    const secret = text.slice(start, end);
    if (secret === '') return [];
    if (rule.entropy > 0 && shannonEntropy(secret) <= rule.entropy) return [];
    const matchStart = offset + m.start;
    const matchEnd = offset + m.end;
    const candidate: Candidate = {
      secret,
      match: text.slice(matchStart, matchEnd),
      line: () => lineAround(text, matchStart, matchEnd),
    };
    if (rule.global?.allows(candidate) || rule.allow.some((a) => a.allows(candidate))) return [];
    if (rule.reject?.(candidate.match, secret)) return [];
    return [{ kind: 'secret', type: rule.id, start, end }];
  }
}

function compileRule(data: RuleData, global: Allowlist | undefined): Rule {
  const source = data.regex!;
  const plain = source.toLowerCase().replaceAll('\\', '');
  return {
    id: data.id,
    re: new LinearRegex(source),
    secretGroup: data.secretGroup ?? 0,
    entropy: data.entropy ?? 0,
    allow: (data.allowlists ?? []).map((a) => new Allowlist(a)),
    global,
    reject: data.reject,
    windowed: data.keywords.some((k) => plain.includes(k.toLowerCase())),
    assignment: source.includes(ASSIGNMENT),
    after: data.after ?? (source.includes('-----') ? ARMORED_AFTER : AFTER),
  };
}

const isWordUnit = (c: number): boolean =>
  (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;

/** Moves a window start back to the start of the word it cuts, so `\b` there means what it means in the text. */
function wordStart(text: string, at: number): number {
  let i = at;
  const floor = Math.max(0, at - 64);
  while (i > floor && isWordUnit(text.charCodeAt(i - 1))) i--;
  return i;
}

/**
 * Whether an assignment operator can follow a keyword ending at `end`: gitleaks'
 * shape allows 20 name characters and 3 quotes or spaces before it. A cheap
 * necessary condition that spares the regex most prose mentions of "token".
 */
function operatorFollows(text: string, end: number): boolean {
  const stop = Math.min(text.length, end + OPERATOR_REACH);
  for (let i = end; i < stop; i++) {
    const c = text.charCodeAt(i);
    if (c === 61 || c === 62 || c === 58 || c === 124 || c === 63 || c === 44) return true; // = > : | ? ,
    const space = c === 32 || (c >= 9 && c <= 13);
    if (!(isWordUnit(c) || space || c === 46 || c === 45 || c === 39 || c === 34)) return false;
  }
  return false;
}

function lineAround(text: string, start: number, end: number): string {
  const from = text.lastIndexOf('\n', start - 1) + 1;
  const nl = text.indexOf('\n', end);
  return text.slice(from, nl < 0 ? text.length : nl);
}
