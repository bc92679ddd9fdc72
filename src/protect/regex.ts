/**
 * The one regex engine of the detectors: re2js, a pure-JavaScript port of RE2
 * (lazy DFA, one-pass and Pike VM matchers), so every match is linear in the
 * input whatever the pattern and no pattern can be made to backtrack.
 *
 * Why re2js and not the native `re2` binding (measured on this 2-core
 * machine, Node 22.23; figures in the README's "Data protection"): the
 * binding has no prebuilt download here, so every clean `npm install`
 * compiles RE2 and Abseil for about 4 minutes, against the headers npm is
 * configured with (the machine's Node 20, whose ABI the pinned Node does
 * not load) unless the install is steered to the pinned Node's headers; a
 * Node upgrade means a rebuild. re2js installs as plain files, on any Node.
 * It is slower per byte (1-5 MB/s for a find over a whole text against the
 * binding's 40-600 MB/s), so it never sees a whole text: a keyword pass and
 * the PII scanners pick small windows, and only those reach a regex.
 * re2-wasm copies the whole input into wasm memory at every exec, which made
 * a global scan of 1 MB take over a minute: not usable.
 */
import { RE2JS } from 're2js';

/** A match, with the span of the part to mask (the secret group, or the whole match). */
export interface MatchSpan {
  readonly start: number;
  readonly end: number;
  readonly secretStart: number;
  readonly secretEnd: number;
}

/** UTF-16 units handed to the engine since start, over all patterns: the work the linear-time bound is about. */
export const engineWork = { units: 0 };

export class LinearRegex {
  readonly source: string;
  private readonly re: RE2JS;

  /** Throws RE2JS' syntax error for a pattern RE2 does not take (backreferences, lookahead). */
  constructor(source: string) {
    this.source = source;
    this.re = RE2JS.compile(source);
  }

  /** Whether the pattern matches anywhere in `text` (the DFA, no captures: the cheap question first). */
  test(text: string): boolean {
    engineWork.units += text.length;
    return this.re.test(text);
  }

  /**
   * Every leftmost-first match in `text`, in order. The secret is group
   * `secretGroup` when given, else the first group that matched something,
   * else the whole match (gitleaks' rule).
   */
  *matches(text: string, secretGroup = 0): Generator<MatchSpan> {
    engineWork.units += text.length;
    const m = this.re.matcher(text);
    const groups = m.groupCount();
    while (m.find()) {
      const start = m.start();
      const end = m.end();
      let secretStart = start;
      let secretEnd = end;
      if (secretGroup > 0 && secretGroup <= groups) {
        secretStart = m.start(secretGroup);
        secretEnd = m.end(secretGroup);
      } else {
        for (let g = 1; g <= groups; g++) {
          const s = m.start(g);
          const e = m.end(g);
          if (s >= 0 && e > s) {
            secretStart = s;
            secretEnd = e;
            break;
          }
        }
      }
      if (secretStart >= 0 && secretEnd > secretStart) yield { start, end, secretStart, secretEnd };
    }
  }
}
