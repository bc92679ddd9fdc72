import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileDetectors } from '../../src/protect/compile.ts';
import { engineWork, LinearRegex } from '../../src/protect/regex.ts';
import { scanValue } from '../../src/protect/scan.ts';

const MB = 1 << 20;
const fill = (unit: string, length: number): string =>
  unit.repeat(Math.ceil(length / unit.length)).slice(0, length);
/** Far above what a linear scan of 1 MB takes here (well under a second alone), far below a backtracking blow-up (centuries). */
const GENEROUS_MS = 60_000;

describe('matching stays linear on inputs built to make a backtracking engine blow up', () => {
  it('runs (a+)+$ over 1 MB of a run with no end in time linear in the input', () => {
    // A backtracking engine tries 2^n ways to split the run; V8's needs seconds for 30 characters.
    for (const pattern of ['(a+)+$', '(a|aa)+$', '(?:a*)*b', '(\\w+\\s?)+$']) {
      const input = `${fill('a', MB)}!`;
      const started = performance.now();
      assert.equal(new LinearRegex(pattern).test(input), false);
      assert.ok(performance.now() - started < GENEROUS_MS, pattern);
    }
  });

  it("feeds the rule set's patterns at most a bounded multiple of the input on crafted near misses", () => {
    const detectors = compileDetectors();
    const inputs: Record<string, string> = {
      'an assignment whose value never ends': `api_key = ${fill('a', MB)}\u0001`,
      'assignments back to back': fill('key=aZ3 ', MB),
      'operators after every keyword': fill('token:=', MB / 4),
      'a PEM key without its END line': `-----BEGIN RSA PRIVATE KEY-----\n${fill('MIIEowIBAAKCAQEA7x9\n', MB / 4)}`,
      'BEGIN lines only': fill('-----BEGIN PRIVATE KEY-----\n', MB / 4),
      'JWT halves': fill('eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkw', MB / 4),
      'key prefixes': fill('AKIAghp_xoxb-sk_live_', MB / 4),
      'URL credentials': fill('a://b:c@', MB / 4),
    };
    for (const [name, text] of Object.entries(inputs)) {
      const before = engineWork.units;
      const started = performance.now();
      detectors.scanText(text);
      const perUnit = (engineWork.units - before) / text.length;
      assert.ok(perUnit <= 64, `${name}: ${perUnit.toFixed(1)} units of regex work per input unit`);
      assert.ok(performance.now() - started < GENEROUS_MS, name);
    }
  });

  it('scans PII look-alikes in one bounded pass: digit runs, @ runs, colon runs, IBAN prefixes', () => {
    const detectors = compileDetectors();
    for (const unit of ['1 2-3.4 ', '4111 1111 ', 'a@b.', '@', 'a:b:', '::', 'DE89 ', '+1 (']) {
      const started = performance.now();
      detectors.scanText(fill(unit, MB / 4));
      assert.ok(performance.now() - started < GENEROUS_MS, unit);
    }
  });

  it('walks a result of several MiB, deeply nested and binary, within its bounds', () => {
    const detectors = compileDetectors();
    const blob = Buffer.alloc(3 * MB, 0xff).toString('base64');
    let nested: unknown = { text: 'x' };
    for (let i = 0; i < 50_000; i++) nested = { n: nested };
    const value = { contents: [{ uri: 'file:///big.bin', blob }], deep: nested };
    const bounds = { maxChars: 64 * MB, maxMillis: GENEROUS_MS, maxDepth: 128 };
    const { boundHit } = scanValue(detectors, value, bounds);
    assert.deepEqual(boundHit, { bound: 'depth', limit: 128 });
    assert.deepEqual(scanValue(detectors, value, { ...bounds, maxChars: MB }).boundHit, {
      bound: 'chars',
      limit: MB,
    });
  });
});
