/**
 * What a pipeline stage calls: scan and mask a result in one step, failing
 * closed (a bound hit, a masking fault or `block` withholds the whole
 * result), and the detected types of call arguments for the policy context.
 */
import { PortcullisError } from '../errors.ts';
import type { Detectors } from './compile.ts';
import type { MaskMode } from './config.ts';
import { type MaskSummary, maskScanned, summarize } from './mask.ts';
import { scanValue } from './scan.ts';
import type { BoundHit, ScanBounds, ScanResult } from './types.ts';

export interface MaskPolicy {
  readonly mode: MaskMode;
  readonly bounds: ScanBounds;
  readonly hashKey?: Uint8Array | undefined;
}

export type WithheldReason = 'blocked' | 'bound' | 'failure';

export type MaskedResult =
  | {
      readonly outcome: 'clean' | 'masked';
      readonly value: unknown;
      readonly summary: MaskSummary;
      readonly types: ScanResult['types'];
    }
  | {
      readonly outcome: 'withheld';
      readonly reason: WithheldReason;
      readonly summary: MaskSummary;
      readonly types: ScanResult['types'];
      readonly boundHit?: BoundHit;
    };

export function maskResult(detectors: Detectors, value: unknown, policy: MaskPolicy): MaskedResult {
  let scan: ScanResult;
  try {
    scan = scanValue(detectors, value, policy.bounds);
  } catch {
    return {
      outcome: 'withheld',
      reason: 'failure',
      summary: {},
      types: { secrets: new Set(), pii: new Set() },
    };
  }
  const { findings, types, boundHit } = scan;
  if (boundHit)
    return { outcome: 'withheld', reason: 'bound', summary: summarize(findings), types, boundHit };
  try {
    const masked = maskScanned(value, findings, policy.mode, { hashKey: policy.hashKey });
    if (masked.outcome === 'blocked')
      return { outcome: 'withheld', reason: 'blocked', summary: masked.summary, types };
    return { outcome: masked.outcome, value: masked.value, summary: masked.summary, types };
  } catch {
    return { outcome: 'withheld', reason: 'failure', summary: summarize(findings), types };
  }
}

const PUBLIC_REASON: Record<WithheldReason, string> = {
  blocked: 'it holds sensitive data',
  bound: 'it could not be checked for sensitive data',
  failure: 'it could not be checked for sensitive data',
};

/** The error a withheld result ends its call with: the reason in public, types and counts in the detail. */
export function withheldError(result: Extract<MaskedResult, { outcome: 'withheld' }>): PortcullisError {
  return new PortcullisError('ERR_RESULT_WITHHELD', `Result withheld (${result.reason})`, {
    publicArgs: [PUBLIC_REASON[result.reason]],
    detail: {
      reason: result.reason,
      masked: result.summary,
      ...(result.boundHit ? { bound: result.boundHit } : {}),
    },
  });
}

/**
 * `context.detected` for a call's arguments: the type names found, sorted,
 * and whether the scan saw everything. When `complete` is false a bound cut
 * the scan short: fail closed (treat the arguments as holding a secret).
 */
export function detectedIn(
  detectors: Detectors,
  args: unknown,
  bounds: ScanBounds,
): { secrets: string[]; pii: string[]; complete: boolean } {
  const { types, boundHit } = scanValue(detectors, args, bounds);
  return { secrets: [...types.secrets].sort(), pii: [...types.pii].sort(), complete: boundHit === undefined };
}
