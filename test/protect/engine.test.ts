import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { KeywordSet } from '../../src/protect/keywords.ts';
import { LinearRegex } from '../../src/protect/regex.ts';
import { maxMatchLength } from '../../src/protect/regex-length.ts';
import { EXTRA_RULES } from '../../src/protect/rules/extra.ts';
import { GITLEAKS_COMMIT, GITLEAKS_RULES } from '../../src/protect/rules/gitleaks.ts';

/** Every (word, end) occurrence, found the slow way. */
function naive(words: string[], text: string): string[] {
  const found: string[] = [];
  const lower = text.toLowerCase();
  for (let end = 1; end <= text.length; end++) {
    words.forEach((w, id) => {
      if (w.length > 0 && end >= w.length && lower.slice(end - w.length, end) === w.toLowerCase())
        found.push(`${id}@${end}`);
    });
  }
  return found.sort();
}

describe('the keyword automaton', () => {
  it('finds every occurrence of every word, overlapping and case-insensitive, like a naive search', () => {
    const alphabet = fc.constantFrom('a', 'b', 'A', 'B', '_', '.');
    const word = fc.string({ unit: alphabet, minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(
        fc.uniqueArray(word, { minLength: 1, maxLength: 6, selector: (w) => w.toLowerCase() }),
        fc.string({ unit: alphabet, maxLength: 40 }),
        (words, text) => {
          const set = new KeywordSet(words);
          const found: string[] = [];
          set.scan(text, (id, end) => found.push(`${id}@${end}`));
          assert.deepEqual(found.sort(), naive(words, text));
          assert.equal(set.test(text), found.length > 0);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('the longest match of a pattern', () => {
  it('never falls short of a match the engine makes', () => {
    for (const [pattern, text] of [
      [String.raw`\b((?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b`, 'AKIAZ7VRSQ5TQ4BGXM2Q'],
      ['(?i)x(?:ab|c){2,3}y?', 'XABABABY'],
      ['(?P<k>[a-f]{4})-(?i:[0-9]{2})', 'abcd-12'],
      ['[^a]{3}.', '\u{1F600}\u{1F600}\u{1F600}\u{1F600}'],
    ] as const) {
      const longest = Math.max(...[...new LinearRegex(pattern).matches(text)].map((m) => m.end - m.start));
      assert.ok(maxMatchLength(pattern) >= longest, pattern);
    }
    assert.equal(maxMatchLength('a+'), Number.POSITIVE_INFINITY);
    assert.equal(maxMatchLength('ab{2,5}'), 6);
  });

  it('gives every rule a reach, and every rule compiles in RE2', () => {
    for (const rule of [...GITLEAKS_RULES, ...EXTRA_RULES]) {
      if (!rule.regex) continue;
      assert.doesNotThrow(() => new LinearRegex(rule.regex!), rule.id);
      assert.ok(maxMatchLength(rule.regex) > 0, rule.id);
    }
  });
});

describe("gitleaks' rules as data", () => {
  it('carry their origin and licence', () => {
    const source = readFileSync(new URL('../../src/protect/rules/gitleaks.ts', import.meta.url), 'utf8');
    assert.match(source, /gitleaks/);
    assert.match(source, /MIT License/);
    assert.match(source, /Copyright \(c\) 2019 Zachary Rice/);
    assert.ok(source.includes(GITLEAKS_COMMIT) && /^[0-9a-f]{40}$/.test(GITLEAKS_COMMIT));
    assert.equal(GITLEAKS_RULES.length, 222);
  });
});
