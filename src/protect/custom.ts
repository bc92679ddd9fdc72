/**
 * Detectors the config adds (`protect.detectors.custom`): an RE2 pattern and
 * a validator. With keywords, the pattern runs only in windows around them;
 * without, over each whole string (a DFA test first, the spans only on a hit).
 */
import type { CustomDetectorConfig } from './config.ts';
import { KeywordSet } from './keywords.ts';
import { VALIDATORS } from './pii/validators.ts';
import { LinearRegex } from './regex.ts';
import type { TextDetector, TextFinding } from './types.ts';

const REACH = 256;

export class CustomDetector implements TextDetector {
  private readonly re: LinearRegex;
  private readonly keywords: KeywordSet | undefined;
  private readonly valid: (match: string) => boolean;
  private readonly config: CustomDetectorConfig;

  constructor(config: CustomDetectorConfig) {
    this.config = config;
    this.re = new LinearRegex(config.pattern);
    this.keywords = config.keywords?.length ? new KeywordSet(config.keywords) : undefined;
    this.valid = VALIDATORS[config.validator];
  }

  scan(text: string, out: TextFinding[]): void {
    if (!this.keywords) {
      this.scanWindow(text, 0, text.length, out);
      return;
    }
    const spans: number[] = [];
    this.keywords.scan(text, (word, end) => {
      const from = Math.max(0, end - this.keywords!.words[word]!.length - REACH);
      const to = Math.min(text.length, end + REACH);
      if (spans.length > 0 && from <= spans[spans.length - 1]!) spans[spans.length - 1] = to;
      else spans.push(from, to);
    });
    for (let i = 0; i < spans.length; i += 2) this.scanWindow(text, spans[i]!, spans[i + 1]!, out);
  }

  private scanWindow(text: string, from: number, to: number, out: TextFinding[]): void {
    const window = from === 0 && to === text.length ? text : text.slice(from, to);
    if (!this.re.test(window)) return;
    for (const m of this.re.matches(window)) {
      if (!this.valid(window.slice(m.secretStart, m.secretEnd))) continue;
      out.push({
        kind: this.config.kind,
        type: this.config.name,
        start: from + m.secretStart,
        end: from + m.secretEnd,
      });
    }
  }
}
