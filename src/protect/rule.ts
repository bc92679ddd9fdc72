/**
 * One secret rule compiled: its regex, filters, and where around a keyword
 * its matches can lie (the window), from the longest match its pattern allows.
 */
import { Allowlist } from './allow.ts';
import { LinearRegex } from './regex.ts';
import { maxMatchLength } from './regex-length.ts';
import { wordStart } from './text.ts';
import type { RuleData } from './types.ts';

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
 * before a period, `ey` of JWTs inside every "key" and "they". Checked by
 * hand against the rules at the pinned commit. (A JWT's later `ey` parts
 * follow a `.`; its first one starts the match at a `\b`, so the hit there
 * opens the window that holds the whole match.)
 */
const WORD_START_KEYWORDS: Readonly<Record<string, readonly string[]>> = {
  'vault-service-token': ['s.'],
  jwt: ['ey'],
};
export interface Rule {
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

export function compileRule(data: RuleData, global: Allowlist | undefined): Rule {
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

export function windowAround(rule: Rule, text: string, start: number, end: number): [number, number] {
  if (rule.reach === Number.POSITIVE_INFINITY) {
    return [wordStart(text, Math.max(0, start - BEFORE)), Math.min(text.length, end + rule.after)];
  }
  // One unit more on each side: `\b` and the rules' end classes look at the neighbours.
  const from = wordStart(text, Math.max(0, Math.max(end - rule.reach, start - rule.before) - 1));
  return [from, Math.min(text.length, start + rule.reach + 1)];
}

export function addWindow(windows: number[], from: number, to: number): void {
  const last = windows.length - 1;
  if (last > 0 && from <= windows[last]!) windows[last] = Math.max(windows[last]!, to);
  else windows.push(from, to);
}
