/** Shapes shared by the detectors, the scanner and the masking. */

/** One allowlist of a rule, as gitleaks defines it: a finding it matches is dropped. */
export interface AllowlistData {
  /** OR (default): a regex or a stopword suffices; AND: every part given must match. */
  readonly condition?: 'OR' | 'AND';
  /** What the regexes test: the secret (default), the whole match, or the match's line. */
  readonly regexTarget?: 'secret' | 'match' | 'line';
  readonly regexes?: readonly string[];
  /** Substrings of the lowercased secret. */
  readonly stopwords?: readonly string[];
  /** File paths: results have none, so a path never matches. */
  readonly paths?: readonly string[];
}

/** A secret rule as data: gitleaks' fields, plus the window the project's own rules may widen. */
export interface RuleData {
  readonly id: string;
  /** RE2 syntax. A rule without one (a file-path rule) is not used. */
  readonly regex?: string;
  /** A file-path condition: results carry no path, so such a rule is not used. */
  readonly path?: string;
  readonly secretGroup?: number;
  /** The secret's Shannon entropy must exceed this. */
  readonly entropy?: number;
  /** Case-insensitive literals; the regex runs only near (or, when a keyword need not be in the match, on a text holding) one of them. */
  readonly keywords: readonly string[];
  readonly allowlists?: readonly AllowlistData[];
  /** How far before a keyword a match may start, when less than its longest match (the project's rules only). */
  readonly before?: number;
  /** How far after a keyword a match may end, in UTF-16 units (default 512; grows when a match reaches the window's end). */
  readonly after?: number;
  /** A cheap necessary condition at a keyword hit (the project's rules only): false skips the regex there. */
  readonly near?: (text: string, keywordStart: number, keywordEnd: number) => boolean;
  /** A check RE2 cannot express (the project's rules only): true drops the candidate. */
  readonly reject?: (match: string, secret: string) => boolean;
}

/** Rules with the allowlist that applies to all of them (gitleaks' global one). */
export interface RuleSet {
  readonly rules: readonly RuleData[];
  readonly allow?: { readonly regexes: readonly string[]; readonly stopwords: readonly string[] };
}

export type DetectorKind = 'secret' | 'pii';

/** A finding inside one string: UTF-16 offsets of the value to mask, never the value itself. */
export interface TextFinding {
  readonly kind: DetectorKind;
  /** A rule id or PII type, e.g. `aws-access-token`, `email`, `payment-card`. */
  readonly type: string;
  readonly start: number;
  readonly end: number;
}

/** Where a string sits in a JSON value: object keys and array indexes from the root. */
export type ValuePath = readonly (string | number)[];

/** How a scanned string is stored in the value: plain text, or base64 of bytes (a blob, image or audio). */
export type LeafEncoding = 'text' | 'base64-utf8' | 'base64-latin1';

export interface Finding extends TextFinding {
  readonly path: ValuePath;
  /** For base64 leaves, offsets are into the decoded text. */
  readonly encoding: LeafEncoding;
}

/** Limits on one scan: past any of them the scan stops and reports which. */
export interface ScanBounds {
  /** UTF-16 units of string content scanned, in all. */
  readonly maxChars: number;
  /** Wall time, measured with `now`. */
  readonly maxMillis: number;
  /** Nesting of objects and arrays. */
  readonly maxDepth: number;
  readonly now?: () => number;
}

export interface BoundHit {
  readonly bound: 'chars' | 'time' | 'depth';
  readonly limit: number;
}

/** What a scan found; with `boundHit` set the scan stopped early and the value must not pass unmasked. */
export interface ScanResult {
  readonly findings: readonly Finding[];
  /** Type names by kind, for the policy context (`context.detected.secrets`, `context.detected.pii`). */
  readonly types: { readonly secrets: ReadonlySet<string>; readonly pii: ReadonlySet<string> };
  readonly boundHit?: BoundHit;
}

/** A detector over one string. Implementations are compiled once and hold no per-call state. */
export interface TextDetector {
  scan(text: string, out: TextFinding[]): void;
}
