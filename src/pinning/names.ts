/**
 * Tool names against the other servers' tools: look-alikes (mixed scripts,
 * homoglyphs), shadows (the same name on another server), and text that
 * speaks of another server's tools.
 */

/** The tools of every server but the one being scanned. */
export interface OtherTools {
  /** Normalised name (and homoglyph skeleton) → a tool of another server with it. */
  readonly skeletons: ReadonlyMap<string, string>;
  /** Matches another server's tool named in text; undefined when there is none to match. */
  readonly mention: RegExp | undefined;
}

export interface NameFinding {
  readonly rule: string;
  readonly score: number;
}

/** Look-alikes a confusable name is made of (Cyrillic and Greek letters that pass for Latin ones). */
const HOMOGLYPHS: Readonly<Record<string, string>> = {
  а: 'a',
  в: 'b',
  е: 'e',
  ё: 'e',
  һ: 'h',
  і: 'i',
  ї: 'i',
  ј: 'j',
  к: 'k',
  м: 'm',
  н: 'h',
  о: 'o',
  р: 'p',
  с: 'c',
  ѕ: 's',
  т: 't',
  у: 'y',
  х: 'x',
  ԁ: 'd',
  ԛ: 'q',
  ԝ: 'w',
  ɡ: 'g',
  α: 'a',
  β: 'b',
  ε: 'e',
  η: 'n',
  ι: 'i',
  κ: 'k',
  ν: 'v',
  ο: 'o',
  ρ: 'p',
  τ: 't',
  υ: 'u',
  χ: 'x',
  ω: 'w',
};

const SCRIPTS = [
  'Latin',
  'Cyrillic',
  'Greek',
  'Armenian',
  'Cherokee',
  'Coptic',
  'Georgian',
  'Han',
  'Arabic',
  'Hebrew',
].map((s) => [s, new RegExp(`\\p{Script=${s}}`, 'u')] as const);

/** Case, separators, compatibility forms and homoglyphs folded away: two names with one skeleton look alike. */
export function skeleton(name: string): string {
  let out = '';
  for (const ch of name.normalize('NFKC').toLowerCase()) {
    if (ch === '_' || ch === '-' || ch === '.' || ch === ' ') continue;
    out += HOMOGLYPHS[ch] ?? ch;
  }
  return out;
}

/** Names worth finding in prose: ones no sentence uses by accident (`send_email`, `getUser`, `fs__read`). */
const DISTINCTIVE = /^(?=.{4,})(?:.*[_.-].*|.*[a-z][A-Z].*)$/;

/** The other servers' tools, from each server's names (original and exposed), leaving `self` out. */
export function otherTools(self: string, names: ReadonlyMap<string, readonly string[]>): OtherTools {
  const skeletons = new Map<string, string>();
  const distinctive: string[] = [];
  for (const [upstream, list] of names) {
    if (upstream === self) continue;
    for (const name of list) {
      skeletons.set(skeleton(name), name);
      if (DISTINCTIVE.test(name)) distinctive.push(name);
    }
  }
  distinctive.sort((a, b) => b.length - a.length);
  const escaped = [...new Set(distinctive)].map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const mention = escaped.length > 0 ? new RegExp(`(?<![\\w])(?:${escaped.join('|')})(?![\\w])`) : undefined;
  return { skeletons, mention };
}

/** Another server's tool this text names, if any. */
export function referencesOther(text: string, others: OtherTools): string | undefined {
  return others.mention?.exec(text)?.[0];
}

export function checkName(name: string, others: OtherTools): NameFinding[] {
  const found: NameFinding[] = [];
  if (/[^\x21-\x7e]/.test(name)) found.push({ rule: 'non-ascii-name', score: 2 });
  const scripts = SCRIPTS.filter(([, re]) => re.test(name)).length;
  if (scripts > 1) found.push({ rule: 'mixed-script-name', score: 5 });
  const twin = others.skeletons.get(skeleton(name));
  if (twin !== undefined) {
    const plain = (s: string) => s.toLowerCase().replace(/[-_.]/g, '');
    if (plain(twin) === plain(name)) found.push({ rule: 'shadows-name', score: 3 });
    else found.push({ rule: 'confusable-name', score: 5 });
  }
  return found;
}
