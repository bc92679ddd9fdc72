import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MemorySessionFacts } from '../../src/policy/session-facts.ts';
import { FROZEN_NOW } from './fixtures.ts';

const TOOL = 'fs__read_text_file';
const callsAt = (facts: MemorySessionFacts, now: number) =>
  facts.snapshot('s', 'alice', TOOL, now).callsLastMinute;

describe('session facts', () => {
  it('counts the calls of the last minute per principal and tool, on the injected clock', () => {
    const facts = new MemorySessionFacts();
    facts.record('s', 'alice', TOOL, FROZEN_NOW, false);
    facts.record('s', 'alice', TOOL, FROZEN_NOW + 1000, false);
    facts.record('s', 'bob', TOOL, FROZEN_NOW + 1000, false);
    facts.record('s', 'alice', 'fs__write_file', FROZEN_NOW + 1000, false);
    assert.equal(callsAt(facts, FROZEN_NOW + 1000), 2);
    assert.equal(callsAt(facts, FROZEN_NOW + 59_999), 2);
    assert.equal(callsAt(facts, FROZEN_NOW + 61_000), 1);
    assert.equal(callsAt(facts, FROZEN_NOW + 62_000), 0);
  });

  it('never forgets a call before a whole window has passed, and forgets it one slot after', () => {
    fc.assert(
      fc.property(fc.nat(10_000_000), fc.nat(59_999), (offset, age) => {
        const facts = new MemorySessionFacts();
        const at = FROZEN_NOW + offset;
        facts.record('s', 'alice', TOOL, at, false);
        assert.equal(callsAt(facts, at + age), 1);
        assert.equal(callsAt(facts, at + 61_000), 0);
      }),
    );
  });

  it('counts every call at a high rate in constant memory', () => {
    const facts = new MemorySessionFacts();
    // 100,000 calls over 50 s: all in the window.
    for (let i = 0; i < 100_000; i++) facts.record('s', 'alice', TOOL, FROZEN_NOW + i / 2, false);
    assert.equal(callsAt(facts, FROZEN_NOW + 50_000), 100_000);
    // 86 s on, the calls of the first 26 s have fallen out (2,000 a second).
    assert.equal(callsAt(facts, FROZEN_NOW + 86_000), 48_000);
  });

  it('scales its slots to a configured window', () => {
    const facts = new MemorySessionFacts(10_000);
    facts.record('s', 'alice', TOOL, FROZEN_NOW, false);
    assert.equal(callsAt(facts, FROZEN_NOW + 9_999), 1);
    assert.equal(callsAt(facts, FROZEN_NOW + 10_200), 0);
  });

  it('hands out the same tool list until the session uses a new tool', () => {
    const facts = new MemorySessionFacts();
    facts.record('s', 'alice', TOOL, FROZEN_NOW, false);
    const first = facts.snapshot('s', 'alice', TOOL, FROZEN_NOW).toolsUsed;
    facts.record('s', 'alice', TOOL, FROZEN_NOW + 1, false);
    assert.equal(facts.snapshot('s', 'alice', TOOL, FROZEN_NOW + 1).toolsUsed, first);
    assert.equal(Object.isFrozen(first), true);
    facts.record('s', 'alice', 'fs__write_file', FROZEN_NOW + 2, true);
    const after = facts.snapshot('s', 'alice', TOOL, FROZEN_NOW + 2);
    assert.deepEqual(after.toolsUsed, [TOOL, 'fs__write_file']);
    assert.equal(after.sensitiveRead, true);
    assert.deepEqual(first, [TOOL]);
  });
});
