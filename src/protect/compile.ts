/** All detectors of a config, compiled once at start; scanning a string then allocates only its findings. */
import { type DetectorsConfig, detectorsSchema } from './config.ts';
import { CustomDetector } from './custom.ts';
import { PiiDetector } from './pii/detector.ts';
import { EXTRA_RULES } from './rules/extra.ts';
import { GITLEAKS_GLOBAL_ALLOW, GITLEAKS_RULES } from './rules/gitleaks.ts';
import { SecretDetector } from './secrets.ts';
import type { TextFinding } from './types.ts';

export class Detectors {
  readonly secrets: SecretDetector | undefined;
  private readonly pii: PiiDetector;
  private readonly custom: readonly CustomDetector[];

  constructor(config: DetectorsConfig) {
    this.secrets = config.secrets
      ? new SecretDetector([{ rules: GITLEAKS_RULES, allow: GITLEAKS_GLOBAL_ALLOW }, { rules: EXTRA_RULES }])
      : undefined;
    this.pii = new PiiDetector(config.pii);
    this.custom = config.custom.map((c) => new CustomDetector(c));
  }

  /** Every finding in one string, in no particular order; overlaps are left to the masking. */
  scanText(text: string): TextFinding[] {
    const out: TextFinding[] = [];
    this.secrets?.scan(text, out);
    this.scanNonSecret(text, out);
    return out;
  }

  /** The PII and custom detectors alone (the secret rules may see a string with its property name in front). */
  scanNonSecret(text: string, out: TextFinding[]): void {
    this.pii.scan(text, out);
    for (const c of this.custom) c.scan(text, out);
  }
}

/** Compiles the detectors `protect.detectors` asks for (all built-in ones by default). */
export function compileDetectors(config: DetectorsConfig = detectorsSchema.parse({})): Detectors {
  return new Detectors(config);
}
