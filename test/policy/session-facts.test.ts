import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MemorySessionFacts } from '../../src/policy/facts/session-facts.ts';
import { FROZEN_NOW } from './fixtures.ts';

const TOOL = 'fs__read_text_file';
const callsAt = (facts: MemorySessionFacts, now: number) =>
  facts.snapshot('alice', TOOL, now).callsLastMinute;

describe('session facts', () => {
  it('counts the calls of the last minute per principal and tool, on the injected clock', () => {
    const facts = new MemorySessionFacts();
    facts.record('alice', TOOL, FROZEN_NOW, { sensitive: false, tool: true });
    facts.record('alice', TOOL, FROZEN_NOW + 1000, { sensitive: false, tool: true });
    facts.record('bob', TOOL, FROZEN_NOW + 1000, { sensitive: false, tool: true });
    facts.record('alice', 'fs__write_file', FROZEN_NOW + 1000, { sensitive: false, tool: true });
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
        facts.record('alice', TOOL, at, { sensitive: false, tool: true });
        assert.equal(callsAt(facts, at + age), 1);
        assert.equal(callsAt(facts, at + 61_000), 0);
      }),
    );
  });

  it('counts every call at a high rate in constant memory', () => {
    const facts = new MemorySessionFacts();
    // 100,000 calls over 50 s: all in the window.
    for (let i = 0; i < 100_000; i++)
      facts.record('alice', TOOL, FROZEN_NOW + i / 2, { sensitive: false, tool: true });
    assert.equal(callsAt(facts, FROZEN_NOW + 50_000), 100_000);
    // 86 s on, the calls of the first 26 s have fallen out (2,000 a second).
    assert.equal(callsAt(facts, FROZEN_NOW + 86_000), 48_000);
  });

  it('scales its slots to a configured window', () => {
    const facts = new MemorySessionFacts({ windowMs: 10_000 });
    facts.record('alice', TOOL, FROZEN_NOW, { sensitive: false, tool: true });
    assert.equal(callsAt(facts, FROZEN_NOW + 9_999), 1);
    assert.equal(callsAt(facts, FROZEN_NOW + 10_200), 0);
  });

  it('hands out the same tool list until the session uses a new tool', () => {
    const facts = new MemorySessionFacts();
    facts.record('alice', TOOL, FROZEN_NOW, { sensitive: false, tool: true });
    const first = facts.snapshot('alice', TOOL, FROZEN_NOW).toolsUsed;
    facts.record('alice', TOOL, FROZEN_NOW + 1, { sensitive: false, tool: true });
    assert.equal(facts.snapshot('alice', TOOL, FROZEN_NOW + 1).toolsUsed, first);
    assert.equal(Object.isFrozen(first), true);
    facts.record('alice', 'fs__write_file', FROZEN_NOW + 2, { sensitive: true, tool: true });
    const after = facts.snapshot('alice', TOOL, FROZEN_NOW + 2);
    assert.deepEqual(after.toolsUsed, [TOOL, 'fs__write_file']);
    assert.equal(after.sensitiveRead, true);
    assert.deepEqual(first, [TOOL]);
  });

  it('remembers a sensitive read and the tools used for the whole history window, then forgets them', () => {
    const facts = new MemorySessionFacts({ windowMs: 60_000, historyMs: 3_600_000 });
    facts.record('alice', 'fs__read_secret', FROZEN_NOW, { sensitive: true, tool: true });
    const later = facts.snapshot('alice', 'fs__send', FROZEN_NOW + 3_599_999);
    assert.equal(later.sensitiveRead, true);
    assert.deepEqual(later.toolsUsed, ['fs__read_secret']);
    const over = facts.snapshot('alice', 'fs__send', FROZEN_NOW + 3_600_000);
    assert.equal(over.sensitiveRead, false);
    assert.deepEqual(over.toolsUsed, []);
    assert.equal(facts.snapshot('bob', 'fs__send', FROZEN_NOW).sensitiveRead, false);
  });

  it('keeps a sensitive read when the clock steps back', () => {
    const facts = new MemorySessionFacts({ historyMs: 60_000 });
    facts.record('alice', 'fs__read_secret', FROZEN_NOW, { sensitive: true, tool: true });
    assert.equal(facts.snapshot('alice', 'fs__send', FROZEN_NOW - 10 * 60_000).sensitiveRead, true);
  });

  it('refuses a new caller rather than forget one whose history is not over, and admits it once one is', () => {
    const facts = new MemorySessionFacts({ windowMs: 1000, historyMs: 60_000, maxPrincipals: 2 });
    facts.record('alice', 'fs__read_secret', FROZEN_NOW, { sensitive: true, tool: true });
    facts.record('bob', 'fs__read', FROZEN_NOW + 1, { sensitive: false, tool: true });
    assert.equal(facts.admits('alice', FROZEN_NOW + 59_999), true, 'a caller already remembered');
    assert.equal(facts.admits('carol', FROZEN_NOW + 59_999), false);
    assert.throws(() =>
      facts.record('carol', 'fs__send', FROZEN_NOW + 59_999, { sensitive: false, tool: true }),
    );
    assert.equal(facts.snapshot('alice', 'fs__send', FROZEN_NOW + 59_999).sensitiveRead, true);
    // Alice's history is over: she is forgotten to make room, and only she.
    assert.equal(facts.admits('carol', FROZEN_NOW + 60_000), true);
    facts.record('carol', 'fs__send', FROZEN_NOW + 60_000, { sensitive: false, tool: true });
    assert.equal(facts.size, 2);
    assert.deepEqual(facts.snapshot('bob', 'fs__read', FROZEN_NOW + 60_000).toolsUsed, ['fs__read']);
  });

  it('forgets the least recently seen caller first', () => {
    const facts = new MemorySessionFacts({ windowMs: 1000, historyMs: 60_000, maxPrincipals: 2 });
    facts.record('alice', 'a', FROZEN_NOW, { sensitive: false, tool: true });
    facts.record('bob', 'b', FROZEN_NOW + 1000, { sensitive: false, tool: true });
    facts.record('alice', 'a', FROZEN_NOW + 2000, { sensitive: true, tool: true });
    // Bob was seen last before Alice's second call: his history ends first.
    assert.equal(facts.admits('carol', FROZEN_NOW + 61_000), true);
    assert.equal(facts.snapshot('alice', 'x', FROZEN_NOW + 61_000).sensitiveRead, true);
    assert.deepEqual(facts.snapshot('bob', 'x', FROZEN_NOW + 61_000).toolsUsed, []);
  });
});
