/** All detectors of a config, compiled once at start; scanning a string then allocates only its findings. */
import { type DetectorsConfig, detectorsSchema } from './config.ts';
import { CustomDetector } from './custom.ts';
import { PiiDetector } from './pii/detector.ts';
import { EXTRA_RULES } from './rules/extra.ts';
import { GITLEAKS_GLOBAL_ALLOW, GITLEAKS_RULES } from './rules/gitleaks.ts';
import { SecretDetector } from './secrets.ts';
import { Sweep, Swept } from './sweep.ts';
import type { TextFinding } from './types.ts';

export class Detectors {
  readonly secrets: SecretDetector | undefined;
  private readonly pii: PiiDetector;
  private readonly custom: readonly CustomDetector[];
  /** The one pass over each string that finds the secret keywords and the number and IBAN starts. */
  private readonly sweep: Sweep;

  constructor(config: DetectorsConfig) {
    this.secrets = config.secrets
      ? new SecretDetector([{ rules: GITLEAKS_RULES, allow: GITLEAKS_GLOBAL_ALLOW }, { rules: EXTRA_RULES }])
      : undefined;
    this.pii = new PiiDetector(config.pii);
    this.custom = config.custom.map((c) => new CustomDetector(c));
    this.sweep = new Sweep({
      keywords: this.secrets?.keywordSet,
      numbers: this.pii.numbers,
      iban: this.pii.iban,
    });
  }

  /** Every finding in one string, in no particular order; overlaps are left to the masking. */
  scanText(text: string): TextFinding[] {
    const out: TextFinding[] = [];
    this.scan(text, undefined, out, new Swept());
    return out;
  }

  /**
   * Every finding in one string, appended to `out`: secrets, then PII, then
   * custom types. The secret rules see `"name": "value"` when the property
   * name holds a keyword, so `{"api_key": "…"}` reads like the assignment it
   * is; offsets are mapped back into the value. `swept` is scratch space,
   * reused from string to string.
   */
  scan(text: string, key: string | undefined, out: TextFinding[], swept: Swept): void {
    this.sweep.run(text, swept);
    const secrets = this.secrets;
    if (secrets) {
      if (key !== undefined && secrets.hasKeyword(key)) scanAssignment(secrets, key, text, out);
      else secrets.scanHits(text, swept.hits, out);
    }
    this.pii.scanSwept(text, swept, out);
    for (const c of this.custom) c.scan(text, out);
  }
}

function scanAssignment(secrets: SecretDetector, key: string, text: string, out: TextFinding[]): void {
  const prefix = `"${key}": "`;
  const found: TextFinding[] = [];
  secrets.scan(`${prefix}${text}"`, found);
  for (const f of found) {
    const start = Math.max(0, f.start - prefix.length);
    const end = Math.min(text.length, f.end - prefix.length);
    if (end > start) out.push({ ...f, start, end });
  }
}

/** Compiles the detectors `protect.detectors` asks for (all built-in ones by default). */
export function compileDetectors(config: DetectorsConfig = detectorsSchema.parse({})): Detectors {
  return new Detectors(config);
}
