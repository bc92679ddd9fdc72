import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deepFreeze, isDeepFrozen } from '../../src/freeze.ts';

describe('deep freezing', () => {
  it('freezes plain data all the way down and vouches for it', () => {
    const value = { a: { b: [1, { c: 'x' }] } };
    deepFreeze(value);
    assert.ok(Object.isFrozen(value.a.b[1]));
    assert.ok(isDeepFrozen(value) && isDeepFrozen(value.a));
  });

  it('freezes the inside of an object that was frozen only at the top', () => {
    const value = Object.freeze({ inner: { v: 1 } });
    deepFreeze(value);
    assert.ok(Object.isFrozen(value.inner));
    assert.ok(isDeepFrozen(value));
  });

  it('does not vouch for what can still change or is not JSON-like (review finding)', () => {
    const getter = Object.defineProperty({}, 'v', { get: () => Math.random(), enumerable: true });
    const cyclic: Record<string, unknown> = { n: 1 };
    cyclic.self = cyclic;
    for (const value of [{ when: new Date(0) }, { m: new Map() }, getter, cyclic]) {
      deepFreeze(value);
      assert.equal(isDeepFrozen(value), false);
    }
  });
});
