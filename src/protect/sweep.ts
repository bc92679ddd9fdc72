/**
 * One pass over a string for every detector that must look at each of its
 * units: the secret rules' keyword automaton, and the starts of numeric
 * tokens (cards, SSNs, phones, IPv4) and of IBANs. What each detector does at
 * a start is its own (`numberAt`, `ibanAt`), so the findings are exactly those
 * of its separate scanner (`scanNumbers`, `scanIbans`).
 *
 * Why the loop is shaped as it is: optimized JavaScript pays a dozen
 * instructions or more for each `charCodeAt` and each typed-array read (the
 * string's and the array's checks are not hoisted out of the loop). Three
 * loops over a string (automaton, numbers, IBANs) read each unit three times;
 * here each ASCII unit costs one `charCodeAt` and one read of a plain array
 * indexed by state and unit, whose entry holds the next state and whether
 * the unit can start a number or an IBAN. Other units (rare in most text)
 * go through the automaton's character classes.
 */
import { KeywordSet } from './keywords.ts';
import { ibanAt, isIbanStart } from './pii/iban.ts';
import { isNumberStart, type NumberType, numberAt } from './pii/numbers.ts';
import type { TextFinding } from './types.ts';

const NUMBER = 1;
const IBAN = 2;
/** The next state has keywords ending in it. */
const OUTPUT = 4;
const FLAGS = NUMBER | IBAN | OUTPUT;
/** States are numbered times ROW, so an entry's low bits are free for the triggers. */
const ROW = 128;

/** ASCII units that continue a word for `ibanAt` (letters, digits, `_`). */
const WORD = new Uint8Array(ROW);
for (let c = 0; c < ROW; c++) WORD[c] = Number(/[A-Za-z0-9_]/.test(String.fromCharCode(c)));

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
  /**
   * By `state * ROW + unit` for ASCII units: the next state times ROW, or'ed
   * with the unit's triggers and with OUTPUT when keywords end there (one
   * test tells the units that need nothing more).
   */
  private readonly ascii: Int32Array;
  /** States at or past this one (times ROW) have keywords ending in them. */
  private readonly firstOutput: number;

  constructor(opts: SweepOptions) {
    this.keywords = opts.keywords ?? new KeywordSet([]);
    this.numberTypes = opts.numbers;
    const { classOf, delta, width } = this.keywords;
    const states = delta.length / width;
    this.firstOutput = (this.keywords.firstOutput / width) * ROW;
    const triggers = (unit: number): number =>
      (opts.numbers.size > 0 && isNumberStart(unit) ? NUMBER : 0) |
      (opts.iban && isIbanStart(unit) ? IBAN : 0);
    this.ascii = new Int32Array(states * ROW);
    for (let state = 0; state < states; state++) {
      for (let unit = 0; unit < ROW; unit++) {
        const next = (delta[state * width + classOf[unit]!]! / width) * ROW;
        this.ascii[state * ROW + unit] = next + triggers(unit) + (next >= this.firstOutput ? OUTPUT : 0);
      }
    }
  }

  run(text: string, into: Swept): void {
    // Setting a length is a call into the runtime: only when there is something to drop.
    if (into.hits.length > 0) into.hits.length = 0;
    if (into.numbers.length > 0) into.numbers.length = 0;
    if (into.ibans.length > 0) into.ibans.length = 0;
    const { ascii } = this;
    const n = text.length;
    const ibanStop = n - 3;
    let state = 0;
    let nextNumber = 0;
    let nextIban = 0;
    let prev = 0;
    for (let i = 0; i < n; i++) {
      const unit = text.charCodeAt(i);
      const entry = unit < ROW ? ascii[state + unit]! : this.wide(state, unit);
      state = entry & -ROW;
      if ((entry & FLAGS) === 0) {
        prev = unit;
        continue;
      }
      if ((entry & OUTPUT) !== 0) this.hit(state, i + 1, into.hits);
      if ((entry & NUMBER) !== 0 && i >= nextNumber)
        nextNumber = numberAt(text, i, this.numberTypes, into.numbers);
      // An IBAN starts a word: `ibanAt` would only step on after a word unit.
      if ((entry & IBAN) !== 0 && i >= nextIban && i < ibanStop && (prev >= ROW || !WORD[prev]))
        nextIban = ibanAt(text, i, into.ibans);
      prev = unit;
    }
  }

  /** The entry for a unit outside ASCII: through its class; such units start no number or IBAN. */
  private wide(state: number, unit: number): number {
    const { classOf, delta, width } = this.keywords;
    const next = (delta[(state / ROW) * width + classOf[unit]!]! / width) * ROW;
    return next >= this.firstOutput ? next + OUTPUT : next;
  }

  private hit(state: number, end: number, hits: number[]): void {
    this.keywords.pushHits((state / ROW) * this.keywords.width, end, hits);
  }
}
