import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toCedar } from '../../src/policy/facts/request.ts';
import { catalogWith, engineFor, facts } from './fixtures.ts';

const catalog = catalogWith();
const read = () => toCedar(facts(catalog, 'fs__read_text_file', { input: { path: '/srv/a.txt' } }));

describe('decision truth table', () => {
  it('allows when a permit applies and no forbid does', () => {
    const d = engineFor('@id("p") permit(principal, action, resource);', catalog).decide(read());
    assert.equal(d.effect, 'allow');
    assert.deepEqual(d.determiningPolicies, ['p']);
    assert.match(d.policySetHash, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(d.errors, []);
  });

  it('denies when a forbid applies, even though a permit does too', () => {
    const d = engineFor(
      '@id("p") permit(principal, action, resource);\n@id("f") forbid(principal, action, resource);',
      catalog,
    ).decide(read());
    assert.equal(d.effect, 'deny');
    assert.deepEqual(d.determiningPolicies, ['f']);
  });

  it('denies when no rule applies', () => {
    const d = engineFor(
      '@id("p") permit(principal, action, resource) when { context.reason == "never" };',
      catalog,
    ).decide(read());
    assert.equal(d.effect, 'deny');
    assert.deepEqual(d.determiningPolicies, []);
  });

  it('denies when there are no policies at all', () => {
    const d = engineFor('', catalog).decide(read());
    assert.equal(d.effect, 'deny');
    assert.equal(d.failure, undefined);
  });

  it('denies on an engine error, even if the erroring policy is a forbid that would have been skipped', () => {
    const engine = engineFor(
      '@id("p") permit(principal, action, resource);\n@id("f") forbid(principal, action, resource) when { context.input has head && context.input.head > 1 };',
      catalog,
    );
    const req = read();
    // An input the schema-checked path can never produce: `head` as a string makes `>` error at run time.
    (req.context.input as Record<string, unknown>).head = 'x';
    const d = engine.decide(req);
    assert.equal(d.effect, 'deny');
    assert.equal(d.failure, 'engine');
    assert.match(d.errors.join(), /f:/);
  });

  it('denies when the request cannot be evaluated at all', () => {
    const req = read();
    req.context.network = { address: { __extn: { fn: 'ip', arg: 'not-an-ip' } }, transport: 'x' };
    // Cedar is sent only the context a policy reads: this one reads the malformed address.
    const d = engineFor(
      '@id("p") permit(principal, action, resource) when { context.network.address.isInRange(ip("0.0.0.0/0")) };',
      catalog,
    ).decide(req);
    assert.equal(d.effect, 'deny');
    assert.equal(d.failure, 'engine');
  });

  it('denies every call while the set does not validate against the tool schemas (schema error)', () => {
    const engine = engineFor(
      '@id("p") permit(principal, action == Action::"tools/call:fs__read_text_file", resource) when { context.input.head == "ten" };',
      catalog,
    );
    assert.match(engine.validate().join(), /types Long and String are not compatible/);
    const d = engine.decide(read());
    assert.equal(d.effect, 'deny');
    assert.equal(d.failure, 'invalid');
  });

  it('carries the obligations of the permits that determined an allow', () => {
    const d = engineFor(
      '@id("w") @obligation("approval, mask") permit(principal, action, resource);',
      catalog,
    ).decide(read());
    assert.equal(d.effect, 'allow');
    assert.deepEqual(d.obligations, ['approval', 'mask']);
  });
});
