/**
 * Data protection as the gateway applies it: which mode masks a call's
 * result (its decision's `mask` obligation, or config per tool, upstream or
 * tier), the result checked and masked failing closed, and what a call's
 * arguments carry for the policy context.
 */
import { PortcullisError } from '../errors.ts';
import { compileDetectors, type Detectors } from './compile.ts';
import { type DetectorsConfig, type MaskMode, type ProtectConfig, protectSchema } from './config.ts';
import { type MaskSummary, summarize } from './mask.ts';
import { maskResult, withheldError } from './result.ts';
import { scanValue, typesOf } from './scan.ts';
import type { ScanBounds } from './types.ts';

/** `context.detected`: the type names found in a call's arguments, sorted. */
export interface DetectedTypes {
  readonly secrets: readonly string[];
  readonly pii: readonly string[];
}

export const NOTHING_DETECTED: DetectedTypes = Object.freeze({
  secrets: Object.freeze([]),
  pii: Object.freeze([]),
});

/**
 * Put in `context.detected.secrets` when the arguments could not be scanned
 * wholly (a bound hit): what was not read may hold a secret, so a rule on
 * secrets applies.
 */
export const UNSCANNED = 'unscanned';

/** What a result is masked for: where it came from, and whether its decision asks for masking. */
export interface MaskTarget {
  readonly upstream: string;
  readonly tool?: { readonly name: string; readonly tier: string } | undefined;
  readonly obligation: boolean;
}

/** How a result was checked, for the outcome record: the mode (null: scanned only), what happened, type -> count. */
export interface MaskOutcome {
  readonly mode: MaskMode | null;
  readonly outcome: 'clean' | 'masked' | 'withheld' | 'unmasked';
  readonly summary: MaskSummary;
}

export type ResultCheck =
  | (MaskOutcome & { readonly outcome: 'clean' | 'masked' | 'unmasked'; readonly value: unknown })
  | (MaskOutcome & { readonly outcome: 'withheld'; readonly error: PortcullisError });

export interface ResultChecked {
  readonly check: ResultCheck;
  /** The result held (or may hold: a bound hit) secrets or personal data: its reader's history is marked. */
  readonly sensitive: boolean;
}

export class DataProtection {
  readonly detectors: Detectors;
  private readonly config: ProtectConfig;
  private readonly hashKey: Uint8Array | undefined;
  private readonly bounds: ScanBounds;
  /** Whether any detector is on: with none, nothing can be found, and no value is walked. */
  private readonly scans: boolean;

  constructor(config: ProtectConfig, opts: { hashKey?: Uint8Array | undefined } = {}) {
    this.config = config;
    this.hashKey = opts.hashKey;
    this.detectors = sharedDetectors(config.detectors);
    this.bounds = config.limits;
    const d = config.detectors;
    this.scans = d.secrets || d.pii.length > 0 || d.custom.length > 0;
  }

  /** The mode a result is masked with; undefined when neither config nor the decision asks for masking. */
  modeFor(t: MaskTarget): MaskMode | undefined {
    const m = this.config.mask;
    const configured =
      (t.tool ? m.tools[t.tool.name] : undefined) ??
      m.upstreams[t.upstream] ??
      (t.tool ? m.tiers[t.tool.tier as keyof typeof m.tiers] : undefined);
    return configured ?? (t.obligation ? m.mode : undefined);
  }

  /** A result checked: masked with `mode`, or (no mode) scanned only. Never throws; a fault withholds. */
  checkResult(value: unknown, mode: MaskMode | undefined): ResultChecked {
    if (!this.scans)
      return { check: { mode: mode ?? null, outcome: 'clean', summary: {}, value }, sensitive: false };
    try {
      return mode === undefined ? this.scanOnly(value) : this.mask(value, mode);
    } catch (err) {
      const error = checkFailed(err);
      return { check: { mode: mode ?? null, outcome: 'withheld', summary: {}, error }, sensitive: true };
    }
  }

  /** What a call's arguments hold; a scan cut short counts as a secret (`unscanned`). */
  detect(args: unknown): DetectedTypes {
    if (!this.scans) return NOTHING_DETECTED;
    const { findings, boundHit } = scanValue(this.detectors, args, this.bounds);
    if (findings.length === 0 && !boundHit) return NOTHING_DETECTED;
    const types = typesOf(findings);
    const secrets = [...types.secrets];
    if (boundHit) secrets.push(UNSCANNED);
    return { secrets: secrets.sort(), pii: [...types.pii].sort() };
  }

  private mask(value: unknown, mode: MaskMode): ResultChecked {
    const out = maskResult(this.detectors, value, { mode, bounds: this.bounds, hashKey: this.hashKey });
    if (out.outcome === 'withheld') {
      const check = { mode, outcome: 'withheld', summary: out.summary, error: withheldError(out) } as const;
      return { check, sensitive: true };
    }
    const check = { mode, outcome: out.outcome, summary: out.summary, value: out.value } as const;
    return { check, sensitive: out.outcome === 'masked' };
  }

  /** Nothing to mask: what it holds marks the reader, and a scan cut short marks it too (it may hold anything). */
  private scanOnly(value: unknown): ResultChecked {
    const { findings, boundHit } = scanValue(this.detectors, value, this.bounds);
    const summary = summarize(findings);
    const outcome = findings.length > 0 ? 'unmasked' : 'clean';
    return { check: { mode: null, outcome, summary, value }, sensitive: findings.length > 0 || !!boundHit };
  }
}

/** A result that could not be checked: withheld, the fault in the detail only. */
export const checkFailed = (err: unknown): PortcullisError =>
  new PortcullisError('ERR_RESULT_WITHHELD', `Result withheld (failure): ${String(err)}`, {
    publicArgs: ['it could not be checked for sensitive data'],
    cause: err,
  });

/** Compiled detectors per detectors config, shared by every gateway and policy service of the process (they hold no per-call state). */
const compiled = new Map<string, Detectors>();
const MAX_COMPILED = 8;

export function sharedDetectors(config: DetectorsConfig): Detectors {
  const key = JSON.stringify(config);
  let detectors = compiled.get(key);
  if (!detectors) {
    detectors = compileDetectors(config);
    if (compiled.size >= MAX_COMPILED) compiled.clear();
    compiled.set(key, detectors);
  }
  return detectors;
}

let defaults: DataProtection | undefined;

/** The built-in detectors and bounds (no config): compiled on first use. */
export function defaultProtection(): DataProtection {
  defaults ??= new DataProtection(protectSchema.parse({}));
  return defaults;
}
