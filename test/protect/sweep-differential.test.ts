/**
 * The fast path against its oracle: `Detectors.scan` finds numbers and IBANs
 * from one shared pass over a string (`Sweep`: a unit table, skips, a filter
 * on IBAN starts) and takes the secret rules' keyword hits from it; the
 * oracle runs each scanner on its own (`PiiDetector.scan`, whose
 * `scanNumbers` and `scanIbans` loop over every unit, and
 * `SecretDetector.scan`, with its own keyword pass). On generated text, valid
 * and invalid identifiers mixed with noise and non-ASCII units, both must
 * find exactly the same spans in the same order.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compileDetectors } from '../../src/protect/compile.ts';
import { PII_TYPES, type PiiType } from '../../src/protect/config.ts';
import { PiiDetector } from '../../src/protect/pii/detector.ts';
import { ibanLength } from '../../src/protect/pii/validators.ts';
import { Swept } from '../../src/protect/sweep.ts';
import type { TextFinding } from '../../src/protect/types.ts';

/** Detector sets whose shared pass differs: every type, numbers only, IBANs only, no secrets, one number type. */
const SETS: readonly { secrets: boolean; pii: readonly PiiType[] }[] = [
  { secrets: true, pii: PII_TYPES },
  { secrets: true, pii: ['payment-card', 'us-ssn', 'phone', 'ipv4'] },
  { secrets: true, pii: ['iban'] },
  { secrets: false, pii: PII_TYPES },
  { secrets: false, pii: ['phone', 'iban'] },
];
const compiled = SETS.map((set) => ({
  fast: compileDetectors({ secrets: set.secrets, pii: [...set.pii], custom: [] }),
  oracle: new PiiDetector(set.pii),
}));

const digit = fc.integer({ min: 0, max: 9 }).map(String);
const digits = (n: number) => fc.array(digit, { minLength: n, maxLength: n }).map((d) => d.join(''));

/** `body` completed with the check digit that makes it pass Luhn. */
function withLuhnDigit(body: string): string {
  let sum = 0;
  let double = true;
  for (let i = body.length - 1; i >= 0; i--) {
    let d = body.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return body + String((10 - (sum % 10)) % 10);
}

const groupsOf = (s: string, size: number, sep: string): string =>
  s.match(new RegExp(`.{1,${size}}`, 'g'))!.join(sep);

/** Cards of several networks, Luhn-valid or one digit off, plain, spaced or dashed. */
const card = fc
  .tuple(
    fc.constantFrom('4', '51', '55', '2221', '34', '37', '6011', '65', '3530', '36', '62', '9'),
    fc.constantFrom(13, 15, 16, 19),
    fc.boolean(),
    fc.constantFrom('', ' ', '-'),
  )
  .chain(([prefix, length, valid, sep]) =>
    digits(length - prefix.length - 1).map((body) => {
      let number = withLuhnDigit(prefix + body);
      if (!valid) number = number.slice(0, -1) + String((Number(number.at(-1)) + 1) % 10);
      return sep ? groupsOf(number, 4, sep) : number;
    }),
  );

/** IBANs of registered countries with the right check digits (or wrong ones), electronic or printed in fours. */
const iban = fc
  .tuple(fc.constantFrom('DE', 'FR', 'GB', 'NL', 'CH', 'NO', 'MT', 'XX'), fc.boolean(), fc.boolean())
  .chain(([country, valid, printed]) =>
    digits((ibanLength(country) ?? 20) - 4).map((bban) => {
      const moved = `${bban}${country}00`;
      let rest = 0;
      for (const ch of moved) {
        const value = ch >= 'A' ? ch.charCodeAt(0) - 55 : Number(ch);
        rest = (rest * (value >= 10 ? 100 : 10) + value) % 97;
      }
      const check = String(98 - rest + (valid ? 0 : 1)).padStart(2, '0');
      const electronic = `${country}${check}${bban}`;
      return printed ? groupsOf(electronic, 4, ' ') : electronic;
    }),
  );

const ssn = fc
  .tuple(digits(3), digits(2), digits(4), fc.constantFrom('-', ' ', ''))
  .map(([a, g, s, sep]) => [a, g, s].join(sep));

const phone = fc.oneof(
  fc.tuple(digits(3), digits(4)).map(([a, b]) => `+1 415 ${a} ${b}`),
  fc.tuple(digits(3), digits(4)).map(([a, b]) => `(415) ${a}-${b}`),
  fc.tuple(digits(4), digits(4)).map(([a, b]) => `020 ${a} ${b}`),
  fc.tuple(digits(2), digits(2), digits(2)).map(([a, b, c]) => `+33 1 ${a} ${b} ${c} 89`),
  fc.tuple(digits(4), digits(4)).map(([a, b]) => `03-${a}-${b}`),
);

const ipv4 = fc
  .array(fc.integer({ min: 0, max: 300 }), { minLength: 4, maxLength: 4 })
  .map((octets) => octets.join('.'));

const email = fc
  .tuple(
    fc.constantFrom('jane.doe', 'a', 'x_1+tag'),
    fc.constantFrom('example.com', 'mail.example.org', 'b.c'),
  )
  .map(([local, domain]) => `${local}@${domain}`);

/** Units that change how a token or a keyword reads: separators, letters, keyword parts, non-ASCII. */
const noise = fc.string({
  unit: fc.constantFrom(
    ...'0123456789 -./()+@_:=\n\tAZaqkKT',
    'key',
    'token',
    'AKIA',
    'ghp_',
    'é',
    '€',
    '\u200b',
    '日本',
    '𝒳',
    '\u0130',
    '\u212a',
    'ſ',
  ),
  maxLength: 12,
});

/** What stands between two parts: the neighbours that decide whether a token stands alone or a word starts. */
const glue = fc.constantFrom(
  '',
  ' ',
  ' ',
  '\n',
  '-',
  '.',
  '/',
  '(',
  ')',
  '+',
  '_',
  '@',
  ':',
  '=',
  'a',
  '7',
  'é',
  '\u200b',
);

const text = fc
  .array(fc.tuple(glue, fc.oneof(card, iban, ssn, phone, ipv4, email, noise)), { maxLength: 10 })
  .chain((parts) => glue.map((last) => parts.map(([g, part]) => g + part).join('') + last));

const spans = (findings: readonly TextFinding[]): string[] =>
  findings.map((f) => `${f.kind}:${f.type}:${f.start}-${f.end}`);

describe('the shared pass against the separate scanners', () => {
  it('finds exactly the numbers, IBANs and other PII that each scanner finds alone, in the same order', () => {
    const swept = new Swept();
    const seen = new Set<string>();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: SETS.length - 1 }), text, (set, t) => {
        const { fast, oracle } = compiled[set]!;
        const out: TextFinding[] = [];
        fast.scan(t, undefined, out, swept);
        const expected: TextFinding[] = [];
        oracle.scan(t, expected);
        for (const f of expected) seen.add(f.type);
        assert.deepEqual(spans(out.filter((f) => f.kind === 'pii')), spans(expected), JSON.stringify(t));
      }),
      { numRuns: 3000 },
    );
    // The generators make valid identifiers of every type (IPv6 only now and then, from the noise):
    // the lists compared were not all empty.
    for (const type of ['email', 'iban', 'ipv4', 'payment-card', 'phone', 'us-ssn'])
      assert.ok(seen.has(type), type);
  });

  it('finds exactly the secrets that the secret rules find with their own keyword pass', () => {
    const { fast } = compiled[0]!;
    const secrets = fast.secrets!;
    const secret = fc.constantFrom(
      'AKIAZ7VRSQ5TQ4BGXM2Q',
      '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',
      'postgres://app:Zq8vN3xK2pR7@db.internal.example:5432/main',
      'api_key = "a8f5f167f44f4964e6c998dee827110c"',
    );
    const swept = new Swept();
    fc.assert(
      fc.property(fc.array(fc.oneof(secret, noise, card, email), { maxLength: 8 }), (parts) => {
        const t = parts.join('');
        const out: TextFinding[] = [];
        fast.scan(t, undefined, out, swept);
        const expected: TextFinding[] = [];
        secrets.scan(t, expected);
        assert.deepEqual(spans(out.filter((f) => f.kind === 'secret')), spans(expected), JSON.stringify(t));
      }),
      { numRuns: 1500 },
    );
  });
});
