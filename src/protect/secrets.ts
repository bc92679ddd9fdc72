/**
 * Secret rules (gitleaks' and the project's), compiled once. One keyword pass
 * over a string picks the rules and where to look; a rule's regex runs only
 * there: in a window as wide as its longest match around the keyword, or,
 * for gitleaks' `name = value` rules, anchored just after the keyword. A DFA
 * test comes first; the spans are computed only on a hit.
 */
import { Allowlist, type Candidate, shannonEntropy } from './allow.ts';
import { KeywordSet } from './keywords.ts';
import { LinearRegex, type MatchSpan } from './regex.ts';
import { maxMatchLength } from './regex-length.ts';
import type { RuleData, RuleSet, TextDetector, TextFinding } from './types.ts';

/** Window reach of a rule whose matches are unbounded; a match reaching a cut end is retried twice as wide. */
const BEFORE = 128;
const AFTER = 512;
/** Armored blocks (PEM, PGP) run from their BEGIN line to their END line. */
const ARMORED_AFTER = 65_536;
/** The shape gitleaks gives `name = value` rules: an operator must follow the keyword closely. */
const ASSIGNMENT = String.raw`(?:[ \t\w.-]{0,20})[\s'"]{0,3}(?:=|>|:{1,3}=|\|\||:|=>|\?=|,)`;
/**
 * gitleaks rules whose keyword names the service and need not occur in the
 * match (`pat…` tokens near "airtable", `digits|…` near "facebook", 40 hex
 * near "sourcegraph"): they search the whole string once a keyword occurs, as
 * gitleaks does. Every other rule's matches hold one of its keywords (checked
 * by hand at the pinned commit), so looking around keywords suffices.
 */
const CONTEXT_RULES: ReadonlySet<string> = new Set([
  'airtable-personnal-access-token',
  'facebook-access-token',
  'sourcegraph-access-token',
]);
/**
 * Short keywords that, in every match of their rule, start a word (after
 * `\b`): `s.` of Vault's legacy tokens otherwise fires on every plural
 * before a period. Checked by hand against the rules at the pinned commit.
 */
const WORD_START_KEYWORDS: Readonly<Record<string, readonly string[]>> = {
  'vault-service-token': ['s.'],
};
/** First look after a keyword of a `name = value` rule: operator, quotes and a 150-character value fit. */
const TAIL_WINDOW = 200;
/** gitleaks' assignment rules allow 50 characters of name before the keyword. */
const NAME_REACH = 50;

interface Rule {
  readonly id: string;
  readonly re: LinearRegex;
  readonly secretGroup: number;
  readonly entropy: number;
  readonly allow: readonly Allowlist[];
  /** The set's allowlist, shared by its rules. */
  readonly global: Allowlist | undefined;
  readonly reject: RuleData['reject'];
  readonly near: RuleData['near'];
  /** Every match holds a keyword, so looking near keywords suffices; else the whole string is searched. */
  readonly windowed: boolean;
  /** Longest match in UTF-16 units, or Infinity. */
  readonly reach: number;
  /** How far before its keyword a match may start. */
  readonly before: number;
  readonly after: number;
  /** Keywords that begin a word in every match of this rule (a hit glued to a word is no start). */
  readonly wordStart: ReadonlySet<string>;
  /** For `name = value` rules: the pattern from the keyword's end on, anchored there. */
  readonly tail: { readonly re: LinearRegex; readonly reach: number } | undefined;
}

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

  /** Whether `text` (a property name, say) holds any rule's keyword. */
  hasKeyword(text: string): boolean {
    return this.keywords.test(text);
  }

  scan(text: string, out: TextFinding[]): void {
    const plans = this.plan(text);
    if (plans === undefined) return;
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

  /** Where each rule must look, by rule index; undefined when no keyword occurs (most strings). */
  private plan(text: string): Map<number, Plan> | undefined {
    let plans: Map<number, Plan> | undefined;
    const words = this.keywords.words;
    this.keywords.scan(text, (word, end) => {
      plans ??= new Map();
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
    });
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

function compileRule(data: RuleData, global: Allowlist | undefined): Rule {
  const source = data.regex!;
  const reach = maxMatchLength(source);
  return {
    id: data.id,
    re: new LinearRegex(source),
    secretGroup: data.secretGroup ?? 0,
    entropy: data.entropy ?? 0,
    allow: (data.allowlists ?? []).map((a) => new Allowlist(a)),
    global,
    reject: data.reject,
    near: data.near,
    windowed: !CONTEXT_RULES.has(data.id),
    wordStart: new Set(WORD_START_KEYWORDS[data.id] ?? []),
    reach,
    before: data.before ?? reach,
    after: data.after ?? (source.includes('-----') ? ARMORED_AFTER : AFTER),
    tail: data.secretGroup === undefined ? tailOf(source) : undefined,
  };
}

/**
 * gitleaks' `name = value` shape, `[\w.-]{0,50}?(?:KEYWORDS)` then the
 * assignment: the part from the assignment on, anchored, with the pattern's
 * leading flags. Only when the part before holds no group of its own.
 */
function tailOf(source: string): Rule['tail'] {
  const at = source.indexOf(ASSIGNMENT);
  if (at < 0) return undefined;
  const head = source
    .slice(0, at)
    .replace(/\\./g, '')
    .replace(/\[[^\]]*\]/g, '');
  const opens = (head.match(/\(/g) ?? []).length;
  if (opens !== (head.match(/\)/g) ?? []).length || opens !== (head.match(/\(\?/g) ?? []).length)
    return undefined;
  const flags = /^\(\?[a-z]+\)/.exec(source)?.[0] ?? '';
  const tail = `^${flags}${source.slice(at)}`;
  return { re: new LinearRegex(tail), reach: maxMatchLength(tail) };
}

function windowAround(rule: Rule, text: string, start: number, end: number): [number, number] {
  if (rule.reach === Number.POSITIVE_INFINITY) {
    return [wordStart(text, Math.max(0, start - BEFORE)), Math.min(text.length, end + rule.after)];
  }
  // One unit more on each side: `\b` and the rules' end classes look at the neighbours.
  const from = wordStart(text, Math.max(0, Math.max(end - rule.reach, start - rule.before) - 1));
  return [from, Math.min(text.length, start + rule.reach + 1)];
}

function addWindow(windows: number[], from: number, to: number): void {
  const last = windows.length - 1;
  if (last > 0 && from <= windows[last]!) windows[last] = Math.max(windows[last]!, to);
  else windows.push(from, to);
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

/** Where gitleaks' lazy `[\w.-]{0,50}?` name prefix starts a match: as far left as it reaches. */
function nameStart(text: string, kwStart: number): number {
  let i = kwStart;
  while (i > 0 && kwStart - i < NAME_REACH) {
    const c = text.charCodeAt(i - 1);
    if (!(isWordUnit(c) || c === 46 || c === 45)) break;
    i--;
  }
  return i;
}

const OPERATOR_REACH = 24;

/** gitleaks' catch-all rule: a specific rule's finding on the same text wins over it. */
const GENERIC = 'generic-api-key';

const overlap = (a: TextFinding, b: TextFinding): boolean => a.start < b.end && b.start < a.end;

/** Where a `name = value` rule's value can start after its keyword: 20 name characters, 3 quotes, an operator, 5 more. */
const VALUE_REACH = 32;

/**
 * Whether an assignment operator can follow a keyword ending at `end`: 20 name
 * characters and 3 quotes or spaces may come first. A cheap necessary
 * condition that spares the regex most prose mentions of "token".
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
