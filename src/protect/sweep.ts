/**
 * One pass over a string for every detector that must look at each of its
 * units: the secret rules' keyword automaton, and the starts of numeric
 * tokens (cards, SSNs, phones, IPv4) and of IBANs. Run as three loops, the
 * same text was read three times, each unit with its own loads and branches;
 * here one table load per unit gives both the automaton's character class
 * and whether the unit can start a token. What each detector then does at a
 * start is its own (`numberAt`, `ibanAt`), so the findings are exactly those
 * of its separate scanner.
 */
import { KeywordSet } from './keywords.ts';
import { ibanAt, isIbanStart } from './pii/iban.ts';
import { isNumberStart, type NumberType, numberAt } from './pii/numbers.ts';
import type { TextFinding } from './types.ts';

const NUMBER = 1;
const IBAN = 2;
/** The low bits of a table entry are the triggers; the rest, the keyword class. */
const TRIGGER_BITS = 2;

/** What one pass over a string found. Reused from string to string: `run` clears it. */
export class Swept {
  /** Keyword hits, in order of their end: word id, end (exclusive), word id, end, … */
  readonly hits: number[] = [];
  readonly numbers: TextFinding[] = [];
  readonly ibans: TextFinding[] = [];
}

export interface SweepOptions {
  /** The secret rules' keywords; none when the secret rules are off. */
  readonly keywords?: KeywordSet | undefined;
  /** The number types to look for; empty for none. */
  readonly numbers: ReadonlySet<NumberType>;
  readonly iban: boolean;
}

export class Sweep {
  readonly keywords: KeywordSet;
  private readonly numberTypes: ReadonlySet<NumberType>;
  /** Per UTF-16 unit: its keyword class shifted left by TRIGGER_BITS, or'ed with NUMBER and IBAN. */
  private readonly table: Uint16Array;

  constructor(opts: SweepOptions) {
    this.keywords = opts.keywords ?? new KeywordSet([]);
    this.numberTypes = opts.numbers;
    const { classOf } = this.keywords;
    this.table = new Uint16Array(65536);
    for (let unit = 0; unit < 65536; unit++) {
      const cls = classOf[unit]!;
      if (cls >= 1 << (16 - TRIGGER_BITS)) throw new Error('sweep: too many keyword classes');
      let entry = cls << TRIGGER_BITS;
      if (opts.numbers.size > 0 && isNumberStart(unit)) entry |= NUMBER;
      if (opts.iban && isIbanStart(unit)) entry |= IBAN;
      this.table[unit] = entry;
    }
  }

  run(text: string, into: Swept): void {
    into.hits.length = 0;
    into.numbers.length = 0;
    into.ibans.length = 0;
    const { table, keywords } = this;
    const { delta, firstOutput } = keywords;
    const n = text.length;
    const ibanStop = n - 3;
    let state = 0;
    let nextNumber = 0;
    let nextIban = 0;
    for (let i = 0; i < n; i++) {
      const entry = table[text.charCodeAt(i)]!;
      state = delta[state + (entry >>> TRIGGER_BITS)]!;
      if (state >= firstOutput) keywords.pushHits(state, i + 1, into.hits);
      if ((entry & (NUMBER | IBAN)) === 0) continue;
      if ((entry & NUMBER) !== 0 && i >= nextNumber)
        nextNumber = numberAt(text, i, this.numberTypes, into.numbers);
      if ((entry & IBAN) !== 0 && i >= nextIban && i < ibanStop) nextIban = ibanAt(text, i, into.ibans);
    }
  }
}
