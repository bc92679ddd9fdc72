/** The built-in PII detectors, each a linear scan with its own validator. */
import type { PiiType } from '../config.ts';
import type { Swept } from '../sweep.ts';
import type { TextDetector, TextFinding } from '../types.ts';
import { scanEmails } from './email.ts';
import { scanIbans } from './iban.ts';
import { scanIpv6 } from './ipv6.ts';
import { type NumberType, scanNumbers } from './numbers.ts';

const NUMBER_TYPES: readonly PiiType[] = ['payment-card', 'us-ssn', 'phone', 'ipv4'];

export class PiiDetector implements TextDetector {
  /** The number types on; the shared pass (`Sweep`) looks for them. */
  readonly numbers: ReadonlySet<NumberType>;
  private readonly email: boolean;
  /** Whether IBANs are on; the shared pass looks for them. */
  readonly iban: boolean;
  private readonly ipv6: boolean;

  constructor(types: readonly PiiType[]) {
    this.numbers = new Set(types.filter((t) => NUMBER_TYPES.includes(t)) as NumberType[]);
    this.email = types.includes('email');
    this.iban = types.includes('iban');
    this.ipv6 = types.includes('ipv6');
  }

  /**
   * Every type on its own scanner: the oracle the fast path (`scanSwept`
   * after a `Sweep`) must agree with, finding for finding, checked by
   * test/protect/sweep-differential.test.ts. Not on the hot path; kept here,
   * beside the scanners whose steps (`numberAt`, `ibanAt`) the sweep calls,
   * so the definition and its fast form change together.
   */
  scan(text: string, out: TextFinding[]): void {
    if (this.email) scanEmails(text, out);
    if (this.numbers.size > 0) scanNumbers(text, this.numbers, out);
    if (this.iban) scanIbans(text, out);
    if (this.ipv6) scanIpv6(text, out);
  }

  /** The same findings in the same order, numbers and IBANs taken from a `Sweep` of `text`. */
  scanSwept(text: string, swept: Swept, out: TextFinding[]): void {
    if (this.email) scanEmails(text, out);
    for (const f of swept.numbers) out.push(f);
    for (const f of swept.ibans) out.push(f);
    if (this.ipv6) scanIpv6(text, out);
  }
}
