import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deepFreeze } from '../../src/freeze.ts';
import type { Principal } from '../../src/identity/principal.ts';
import { cedar } from '../../src/policy/engine/cedar.ts';
import { PolicyEngine } from '../../src/policy/engine/engine.ts';
import { parsePolicyTexts } from '../../src/policy/engine/policy-set.ts';
import { type PolicySource, ResidualSets } from '../../src/policy/engine/residuals.ts';
import { toCedar } from '../../src/policy/facts/request.ts';
import { alice, catalogWith, facts } from './fixtures.ts';

const catalog = catalogWith();
const engineOf = (text: string, residualsAfter: number | 'never' = 0) =>
  new PolicyEngine(parsePolicyTexts([{ file: 't.cedar', text }]), catalog, { residualsAfter });
const read = (over: Parameters<typeof facts>[2] = {}) =>
  toCedar(facts(catalog, 'fs__read_text_file', { input: { path: '/srv/a' }, ...over }));

const TIERED = `
@id("read") @obligation("mask")
permit(principal, action in Action::"tools/call", resource is Tool)
when { resource.tier == "read" && principal.scopes.contains("tools") && context.reason != "" };
@id("engineers") permit(principal in Group::"engineers", action == Action::"tools/call:fs__read_text_file", resource) when { context.input.path like "/srv/*" };
@id("no-risk") forbid(principal, action, resource) when { context.risk >= 90 };
@id("never") forbid(principal, action, resource) when { principal.user == "mallory" && context.reason == "" };
`;

describe('decisions on residual policies', () => {
  it('decides a repeated call on residuals over the context alone, sending Cedar no entity', () => {
    const engine = engineOf(TIERED, 2);
    const sent = [1, 2, 3, 4].map(() => engine.decisionCallFor(read()));
    assert.deepEqual(
      sent.map((c) => c?.entities.length),
      [3, 3, 0, 0],
    );
    assert.match(String(sent[2]?.preparsedPolicySetId), /^portcullis-residual-/);
    const d = engine.decide(read());
    assert.equal(d.effect, 'allow');
    assert.deepEqual([...d.determiningPolicies].sort(), ['engineers', 'read']);
    assert.deepEqual(d.obligations, ['mask']);
  });

  it('still decides every call on its own context: the same caller is denied when the context changes', () => {
    const engine = engineOf(TIERED);
    assert.equal(engine.decide(read()).effect, 'allow');
    assert.equal(engine.decide(read({ input: { path: '/etc/shadow' } })).effect, 'allow'); // "read" alone permits
    const noReason = engine.decide(read({ reason: '', input: { path: '/etc/shadow' } }));
    assert.equal(noReason.effect, 'deny');
    assert.equal(engine.decisionCallFor(read({ reason: '' }))?.entities.length, 0);
  });

  it('shares residuals between two tokens of one caller that differ only in what the slice does not read', () => {
    const engine = engineOf(TIERED, 2);
    const token = (jti: string): Principal =>
      deepFreeze({ ...alice, tokenId: jti, claims: { ...alice.claims, jti } });
    const first = token('t1');
    for (let i = 0; i < 3; i++) engine.decisionCallFor(read({ principal: first }));
    assert.equal(engine.decisionCallFor(read({ principal: token('t2') }))?.entities.length, 0);
    // A slice that reads tags sends them, and then the claims set tokens apart.
    const tagged = engineOf(
      `@id("t") permit(principal, action, resource) when { principal.hasTag("jti") && context.reason != "" };`,
      2,
    );
    for (let i = 0; i < 3; i++) tagged.decisionCallFor(read({ principal: first }));
    assert.equal(tagged.decisionCallFor(read({ principal: token('t2') }))?.entities.length, 3);
  });

  it('gives a caller whose attributes differ residuals of its own', () => {
    const engine = engineOf(TIERED);
    const stranger: Principal = { ...alice, scopes: [], claims: { groups: [] } };
    for (let i = 0; i < 3; i++) assert.equal(engine.decide(read()).effect, 'allow');
    assert.equal(engine.decide(read({ principal: stranger })).effect, 'deny');
    const mallory: Principal = { ...alice, user: 'mallory' };
    assert.equal(engine.decide(read({ principal: mallory })).effect, 'allow');
    const d = engine.decide(read({ principal: mallory, reason: '', input: { path: '/srv/x' } }));
    assert.equal(d.effect, 'deny');
    assert.deepEqual(d.determiningPolicies, ['never']);
  });

  it('decides in full when a residual would need entity data (`has`, `in`, tags)', () => {
    for (const condition of [
      'context.input has head && context.input.head > 10',
      'principal.hasTag("dept") && context.reason == ""',
    ]) {
      const engine = engineOf(
        `@id("p") permit(principal, action, resource); @id("f") forbid(principal, action, resource) when { ${condition} };`,
      );
      const call = engine.decisionCallFor(read());
      assert.ok(call);
      // A tag read of the known principal is evaluated with the entities at hand; `has` on the context stays.
      assert.equal(call.entities.length, condition.startsWith('context.input has') ? 3 : 0, condition);
      assert.equal(
        engine.decide(read({ input: { path: '/a', head: 20 } })).effect,
        condition.startsWith('context') ? 'deny' : 'allow',
      );
    }
  });

  it('keeps denying when a policy calls unknown() itself, as the full call does', () => {
    // Found in review: the policy's own unknown("risk") was turned into context.risk.
    const text = `@id("p") permit(principal, action, resource);
@id("f") forbid(principal, action, resource) when { context.risk >= 0 && unknown("risk") > 10 };`;
    for (const after of ['never', 0] as const) {
      const d = engineOf(text, after).decide(read());
      assert.equal(d.effect, 'deny', String(after));
      assert.equal(d.failure, 'engine');
    }
  });

  it('keys residuals by the principal, action and resource too, not only by the entities sent', () => {
    // Found in review: two callers (or two actions) with the same entity list shared residuals.
    const text =
      '@id("p") permit(principal, action, resource) when { principal.user == "alice" && context.reason != "" };';
    const base = read();
    const bob = {
      ...base.entities[0]!,
      uid: { type: 'Caller', id: 'jwt:bob' },
      attrs: { ...base.entities[0]!.attrs, id: 'jwt:bob', user: 'bob' },
      parents: [],
    };
    const both = { ...base, entities: [...base.entities, bob] };
    const engine = engineOf(text);
    assert.equal(engine.decide(both).effect, 'allow');
    assert.equal(engine.decide({ ...both, principal: { type: 'Caller', id: 'jwt:bob' } }).effect, 'deny');
    const onRead = `@id("p") permit(principal, action, resource) when { action == Action::"tools/call:fs__read_text_file" && context.reason != "" };`;
    const noAction = { ...base, entities: base.entities.slice(0, 2) };
    const actions = engineOf(onRead);
    assert.equal(actions.decide(noAction).effect, 'allow');
    const write = { ...noAction, action: { type: 'Action', id: 'tools/call:fs__write_file' } };
    assert.equal(actions.decide(write).effect, 'deny');
  });

  it('does not trust a digest of an entity frozen only at the top', () => {
    const text =
      '@id("p") permit(principal, action, resource) when { principal.user == "alice" && context.reason != "" };';
    const base = read();
    const caller = structuredClone(base.entities[0]!);
    Object.freeze(caller);
    const req = { ...base, entities: [caller, ...base.entities.slice(1)] };
    const engine = engineOf(text);
    assert.equal(engine.decide(req).effect, 'allow');
    (caller.attrs as Record<string, unknown>).user = 'mallory';
    assert.equal(engine.decide(req).effect, 'deny');
  });

  it('decides in full an attribute of an entity the partial evaluation left in the residual', () => {
    // Found in review: `.` on an if-then-else of entity literals was denied for want of entity data.
    const engine = engineOf(
      '@id("p") permit(principal, action, resource) when { (if context.reason == "" then principal else principal).user == "alice" };',
    );
    assert.equal(engine.decisionCallFor(read())?.entities.length, 3);
    assert.equal(engine.decide(read()).effect, 'allow');
  });

  it('keeps a forbid whose id is __proto__ in the residuals (review finding)', () => {
    const text = `@id("p") permit(principal, action, resource);
@id("__proto__") forbid(principal, action, resource) when { context.reason != "" };`;
    for (const after of ['never', 0, 1] as const) {
      const engine = engineOf(text, after);
      for (let i = 0; i < 3; i++) {
        const d = engine.decide(read());
        assert.equal(d.effect, 'deny', `${after} #${i}`);
        assert.deepEqual(d.determiningPolicies, ['__proto__']);
      }
    }
  });

  it('never builds residuals when told not to', () => {
    const engine = engineOf(TIERED, 'never');
    for (let i = 0; i < 5; i++) assert.equal(engine.decisionCallFor(read())?.entities.length, 3);
  });
});

describe('the residual sets', () => {
  const permit = (): PolicySource => ({
    p: {
      effect: 'permit',
      principal: { op: 'All' },
      action: { op: 'All' },
      resource: { op: 'All' },
      conditions: [],
    },
  });
  const forbid = (): PolicySource => ({ f: { ...permit().p!, effect: 'forbid' } });
  const decideOn = (id: string) => {
    const answer = cedar.statefulIsAuthorized({
      principal: { type: 'Caller', id: 'a' },
      action: { type: 'Action', id: 'x' },
      resource: { type: 'Tool', id: 't' },
      context: {},
      entities: [],
      preparsedPolicySetId: id,
    });
    assert.equal(answer.type, 'success');
    return answer.type === 'success' ? answer.response.decision : 'failure';
  };

  it('keeps at most its bound, reuses an evicted slot, and rebuilds an evicted key when it comes back', () => {
    const sets = new ResidualSets(2, 'test-residual-lru');
    const a = sets.lookup('a', 0, permit);
    const b = sets.lookup('b', 0, forbid);
    assert.ok(a && b);
    assert.equal(decideOn(a.id), 'allow');
    const c = sets.lookup('c', 0, forbid);
    assert.equal(sets.size, 2);
    assert.equal(c?.id, a.id, 'the least recently used slot is reused');
    assert.equal(decideOn(c!.id), 'deny');
    let rebuilt = false;
    const again = sets.lookup('a', 0, () => {
      rebuilt = true;
      return permit();
    });
    assert.ok(rebuilt);
    assert.equal(decideOn(again!.id), 'allow');
    assert.equal(decideOn(c!.id === again!.id ? b.id : c!.id), 'deny');
  });

  it('counts calls before building, and remembers a key that cannot have residuals', () => {
    const sets = new ResidualSets(8, 'test-residual-count');
    let builds = 0;
    const none = () => {
      builds++;
      return null;
    };
    assert.equal(sets.lookup('k', 2, none), undefined);
    assert.equal(sets.lookup('k', 2, none), undefined);
    assert.equal(builds, 0);
    assert.equal(sets.lookup('k', 2, none), undefined);
    assert.equal(sets.lookup('k', 2, none), undefined);
    assert.equal(builds, 1);
  });
});

describe('validation that cannot run', () => {
  it('keeps the set unusable instead of remembering it as valid (review finding)', () => {
    const odd = catalogWith();
    // A property name with a lone surrogate makes Cedar's validator throw, not answer.
    const inputSchema = JSON.parse(
      '{"type":"object","properties":{"\\ud800":{"type":"boolean"},"ok":{"type":"boolean"}}}',
    );
    odd.updateTools('fs', [{ name: 'fs__odd', inputSchema, annotations: { readOnlyHint: true } }]);
    const engine = new PolicyEngine(
      parsePolicyTexts([{ file: 't.cedar', text: '@id("p") permit(principal, action, resource);' }]),
      odd,
    );
    for (let i = 0; i < 2; i++) {
      const problems = engine.validate();
      assert.equal(problems.length, 1);
      assert.match(problems[0]!, /^validation failed/);
    }
  });
});
