import { isObject, type JsonObject } from '../jsonrpc.ts';
import { BIDI_CONTROLS, decodeTags, hasZeroWidth, revealInvisible, TAG_CHARACTERS } from './invisible.ts';
import { checkName, type OtherTools, referencesOther } from './names.ts';
import { ANCHORS, TEXT_RULES } from './rules.ts';

/** One heuristic that fired, where, and a short excerpt (invisible characters shown as code points). */
export interface Finding {
  readonly rule: string;
  readonly score: number;
  /** The field it fired in: `description`, `inputSchema.properties.path.description`, `instructions`, `result`. */
  readonly where: string;
  readonly excerpt: string;
}

export interface ScanReport {
  /** The sum of the distinct rules that fired. */
  readonly score: number;
  readonly findings: readonly Finding[];
}

/** A description much longer than this (per the arguments it documents) is hiding something or padding. */
const BASE_DESCRIPTION = 200;
const PER_PROPERTY = 100;
const MIN_LONG = 1000;
const EXCERPT = 80;

/** Collects the first finding of each rule. */
class Findings {
  private readonly byRule = new Map<string, Finding>();

  add(rule: string, score: number, where: string, excerpt: string): void {
    if (!this.byRule.has(rule)) this.byRule.set(rule, { rule, score, where, excerpt: visible(excerpt) });
  }

  report(): ScanReport {
    const findings = [...this.byRule.values()];
    return { score: findings.reduce((sum, f) => sum + f.score, 0), findings };
  }
}

/** Tag characters, bidi controls, zero-width characters, then every text rule, on one string. */
function scanText(text: string, where: string, out: Findings): void {
  if (TAG_CHARACTERS.test(text)) {
    out.add('tag-characters', 5, where, text);
    const hidden = decodeTags(text);
    if (hidden.trim() !== '') scanText(hidden, `${where} (in tag characters)`, out);
  }
  if (BIDI_CONTROLS.test(text)) out.add('bidi-controls', 5, where, text);
  if (hasZeroWidth(text)) out.add('zero-width', 2, where, text);
  const found = text.toLowerCase().match(ANCHORS);
  if (!found) return;
  const hits = new Set(found);
  for (const rule of TEXT_RULES) {
    if (!rule.anchors.some((word) => hits.has(word))) continue;
    const m = rule.pattern.exec(text);
    if (m) out.add(rule.id, rule.score, where, around(text, m.index, m[0].length));
  }
}

/** Every string (and key) of a JSON value with its path, e.g. `inputSchema.properties.path.description`. */
function* stringsOf(value: unknown, path: string): Generator<[string, string]> {
  if (typeof value === 'string') yield [value, path];
  else if (Array.isArray(value))
    for (let i = 0; i < value.length; i++) yield* stringsOf(value[i], `${path}[${i}]`);
  else if (isObject(value))
    for (const [k, v] of Object.entries(value)) {
      yield [k, `${path} (key)`];
      yield* stringsOf(v, `${path}.${k}`);
    }
}

/**
 * A tool definition as an upstream listed it: its name (scripts, look-alikes
 * of other servers' tools), and every text in it (description, title,
 * annotations, schemas with their property descriptions and titles).
 */
export function scanDefinition(def: JsonObject, others: OtherTools): ScanReport {
  const out = new Findings();
  const name = typeof def.name === 'string' ? def.name : '';
  for (const f of checkName(name, others)) out.add(f.rule, f.score, 'name', name);
  for (const field of ['title', 'description', 'annotations', 'inputSchema', 'outputSchema'] as const) {
    for (const [text, where] of stringsOf(def[field], field)) {
      scanText(text, where, out);
      const ref = referencesOther(text, others);
      if (ref) out.add('cross-server-reference', 4, where, ref);
    }
  }
  const description = typeof def.description === 'string' ? def.description : '';
  const props =
    isObject(def.inputSchema) && isObject(def.inputSchema.properties) ? def.inputSchema.properties : {};
  const need = BASE_DESCRIPTION + PER_PROPERTY * Object.keys(props).length;
  if (description.length > MIN_LONG && description.length > 3 * need)
    out.add(
      'long-description',
      description.length > 6 * need ? 3 : 2,
      'description',
      `${description.length} characters`,
    );
  return out.report();
}

/** A server's `instructions`: the same text rules, and no talk of other servers' tools. */
export function scanInstructions(text: string, others: OtherTools): ScanReport {
  const out = new Findings();
  scanText(text, 'instructions', out);
  const ref = referencesOther(text, others);
  if (ref) out.add('cross-server-reference', 4, 'instructions', ref);
  return out.report();
}

/** A tool's result (every string in it): instructions injected for the model. */
export function scanResult(result: unknown): ScanReport {
  const out = new Findings();
  for (const [text, where] of stringsOf(result, 'result')) if (text.length >= 8) scanText(text, where, out);
  return out.report();
}

function around(text: string, index: number, length: number): string {
  const start = Math.max(0, index - 20);
  return text.slice(start, Math.min(text.length, start + Math.max(EXCERPT, length + 20)));
}

/** An excerpt with its invisible characters shown, at most a few lines long. */
function visible(text: string): string {
  const out = revealInvisible(text.slice(0, 400));
  return out.length > EXCERPT * 3 ? `${out.slice(0, EXCERPT * 3)}…` : out;
}
