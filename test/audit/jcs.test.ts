import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalize } from '../../src/audit/jcs.ts';
import { deepFreeze } from '../../src/freeze.ts';

describe('RFC 8785 canonical JSON', () => {
  it('sorts keys by UTF-16 code units and drops whitespace', () => {
    const value = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    assert.equal(
      canonicalize(value),
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign","😀":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  it('serialises numbers the ECMAScript way', () => {
    assert.equal(
      canonicalize([1e21, 1e-7, -0, 0.000001, 333333333.3333333, 4.5, 2e-3]),
      '[1e+21,1e-7,0,0.000001,333333333.3333333,4.5,0.002]',
    );
  });

  it('escapes strings minimally and keeps literals', () => {
    assert.equal(
      canonicalize({ b: [true, null, false], a: '\u0001\n"\\/' }),
      '{"a":"\\u0001\\n\\"\\\\/","b":[true,null,false]}',
    );
  });

  it('writes every well-formed string and every finite number exactly as JSON.stringify does', () => {
    const unit = fc.constantFrom(
      'a',
      'Z',
      ' ',
      '"',
      '\\',
      '/',
      '\u0000',
      '\n',
      '\u001f',
      '\u007f',
      '\u2028',
      'é',
      '😀',
    );
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit }), fc.string({ unit: 'binary' })), (s) => {
        fc.pre(s.isWellFormed());
        assert.equal(canonicalize(s), JSON.stringify(s));
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (n) => {
        assert.equal(canonicalize(n), JSON.stringify(n));
      }),
      { numRuns: 500 },
    );
  });

  it('refuses values that are not JSON', () => {
    assert.throws(() => canonicalize(Number.NaN), { code: 'ERR_AUDIT_NOT_JSON' });
    assert.throws(() => canonicalize('\ud800'), { code: 'ERR_AUDIT_NOT_JSON' });
    assert.throws(() => canonicalize([undefined]), { code: 'ERR_AUDIT_NOT_JSON' });
  });

  it('reads back as the same value, whatever order its keys were written in', () => {
    const reversed = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(reversed);
      if (v === null || typeof v !== 'object') return v;
      return Object.fromEntries(
        Object.entries(v)
          .reverse()
          .map(([k, x]) => [k, reversed(x)]),
      );
    };
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = canonicalize(value);
        assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(value)));
        assert.equal(canonicalize(reversed(value)), text);
      }),
      { numRuns: 300 },
    );
  });

  it('gives a deep-frozen value the text of an unfrozen copy, on every call, inside other values too', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = canonicalize(value);
        const frozen = deepFreeze(structuredClone(value));
        assert.equal(canonicalize(frozen), text);
        assert.equal(canonicalize(frozen), text);
        assert.equal(canonicalize({ kept: frozen, n: 1 }), canonicalize({ kept: value, n: 1 }));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a deep-frozen value JSON cannot carry, every time (nothing refused is kept)', () => {
    const lone = deepFreeze({ text: '\ud800' });
    const infinite = deepFreeze([1, Number.POSITIVE_INFINITY]);
    for (let i = 0; i < 2; i++) {
      assert.throws(() => canonicalize(lone), { code: 'ERR_AUDIT_NOT_JSON' });
      assert.throws(() => canonicalize(infinite), { code: 'ERR_AUDIT_NOT_JSON' });
    }
  });
});
