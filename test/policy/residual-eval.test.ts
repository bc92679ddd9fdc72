import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { cedar, type PolicyJson } from '../../src/policy/engine/cedar.ts';
import { BAIL, type CompiledResiduals, compileResiduals } from '../../src/policy/engine/residual-eval.ts';

const RUNS = Number(process.env.RESIDUAL_EVAL_RUNS ?? 400);

const ctx = { Var: 'context' };
const attr = (left: unknown, name: string) => ({ '.': { left, attr: name } });
const path = fc.constantFrom(
  attr(ctx, 'a'),
  attr(ctx, 'b'),
  attr(attr(ctx, 'r'), 'x'),
  attr(attr(ctx, 'r'), 'y'),
  attr(ctx, 's'),
  attr(ctx, 'missing'),
);
const literal = fc.oneof(
  fc.boolean(),
  fc.integer({ min: -5, max: 5 }),
  fc.constantFrom('', 'x', 'ticket 42', 2 ** 53 + 2, 1.5, { __entity: { type: 'T', id: 'x' } }),
);
const binary = (op: string, left: unknown, right: unknown) => ({ [op]: { left, right } });
/** Cedar's JSON names the branch `then`; built by entries so it is plainly data, not a thenable. */
const ifThenElse = (c: unknown, t: unknown, e: unknown) => ({
  'if-then-else': Object.fromEntries([
    ['if', c],
    ['then', t],
    ['else', e],
  ]),
});

/** Expressions mostly from what the evaluator knows, some from what it must refuse (`like`, `+`, `has`). */
const { expr } = fc.letrec((tie) => ({
  expr: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    literal.map((v) => ({ Value: v })),
    path,
    fc
      .tuple(
        fc.constantFrom(
          '&&',
          '||',
          '==',
          '!=',
          '<',
          '<=',
          '>',
          '>=',
          'contains',
          'containsAll',
          'containsAny',
          '+',
          'like',
        ),
        tie('expr'),
        tie('expr'),
      )
      .map(([op, l, r]) => (op === 'like' ? { like: { left: l, pattern: ['Wildcard'] } } : binary(op, l, r))),
    tie('expr').map((arg) => ({ '!': { arg } })),
    tie('expr').map((arg) => ({ isEmpty: { arg } })),
    fc.tuple(tie('expr'), tie('expr'), tie('expr')).map(([c, t, e]) => ifThenElse(c, t, e)),
    fc.constant({ Set: [{ Value: 1 }] }),
    fc.array(tie('expr'), { maxLength: 3 }).map((elements) => ({ Set: elements })),
    fc.constant({ has: { left: ctx, attr: 'a' } }),
  ),
}));

const value = fc.oneof(
  fc.boolean(),
  fc.integer({ min: -5, max: 5 }),
  fc.constantFrom('', 'x', 'ticket 42', '\ud800', 1.5, 2 ** 60, null),
  fc.constant({ __extn: { fn: 'ip', arg: '10.0.0.1' } }),
  fc.array(fc.oneof(fc.integer({ min: -2, max: 2 }), fc.constantFrom('x', true, 1.5)), { maxLength: 3 }),
);
const context = fc.record(
  {
    a: value,
    b: value,
    r: fc.oneof(fc.record({ x: value, y: value }, { requiredKeys: [] }), value),
    s: value,
  },
  { requiredKeys: [] },
);
const policies = fc.array(
  fc.record({
    effect: fc.constantFrom('permit', 'forbid'),
    conditions: fc.array(fc.record({ kind: fc.constantFrom('when', 'unless'), body: expr }), {
      minLength: 0,
      maxLength: 2,
    }),
  }),
  { minLength: 1, maxLength: 4 },
);

/** Well-typed expressions over a fixed context shape: where exactness, not bailing, is what is tested. */
const typed = fc.letrec((tie) => ({
  long: fc.oneof(
    fc.integer({ min: -2, max: 2 }).map((v) => ({ Value: v })),
    fc.constantFrom(attr(ctx, 'a'), attr(ctx, 'b'), attr(attr(ctx, 'r'), 'x')),
  ),
  str: fc.oneof(
    fc.constantFrom('', 'x', 'y').map((v) => ({ Value: v })),
    fc.constantFrom(attr(ctx, 's'), attr(ctx, 't'), attr(attr(ctx, 'r'), 'y')),
  ),
  bool: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.boolean().map((v) => ({ Value: v })),
    fc.constant(attr(ctx, 'f')),
    fc
      .tuple(fc.constantFrom('<', '<=', '>', '>=', '==', '!='), tie('long'), tie('long'))
      .map(([op, l, r]) => binary(op, l, r)),
    fc.tuple(fc.constantFrom('==', '!='), tie('str'), tie('str')).map(([op, l, r]) => binary(op, l, r)),
    fc.tuple(fc.constantFrom('==', '!='), tie('long'), tie('str')).map(([op, l, r]) => binary(op, l, r)),
    tie('long').map((item) => binary('contains', attr(ctx, 'set'), item)),
    fc.constant({ isEmpty: { arg: attr(ctx, 'set') } }),
    fc
      .tuple(
        fc.constantFrom('containsAll', 'containsAny'),
        fc.array(tie('long'), { maxLength: 3 }).map((elements) => ({ Set: elements })),
        fc.boolean(),
      )
      .map(([op, literalSet, flip]) =>
        flip ? binary(op, literalSet, attr(ctx, 'set')) : binary(op, attr(ctx, 'set'), literalSet),
      ),
    fc
      .tuple(fc.array(tie('long'), { maxLength: 3 }), tie('long'))
      .map(([elements, item]) => binary('contains', { Set: elements }, item)),
    fc.tuple(fc.constantFrom('&&', '||'), tie('bool'), tie('bool')).map(([op, l, r]) => binary(op, l, r)),
    tie('bool').map((arg) => ({ '!': { arg } })),
    fc.tuple(tie('bool'), tie('bool'), tie('bool')).map(([c, t, e]) => ifThenElse(c, t, e)),
  ),
}));
const typedContext = fc.record({
  a: fc.integer({ min: -2, max: 2 }),
  b: fc.oneof(fc.integer({ min: -2, max: 2 }), fc.constantFrom('x', 1.5)),
  s: fc.constantFrom('', 'x', 'y'),
  t: fc.oneof(fc.constantFrom('', 'x'), fc.constant(7)),
  f: fc.oneof(fc.boolean(), fc.constant('true')),
  r: fc.record({ x: fc.integer({ min: -2, max: 2 }), y: fc.constantFrom('x', 'y') }, { requiredKeys: ['y'] }),
  set: fc.array(fc.integer({ min: -2, max: 2 }), { maxLength: 3 }),
});

function cedarDecides(set: Record<string, PolicyJson>, c: Record<string, unknown>) {
  const answer = cedar.isAuthorized({
    principal: { type: 'Caller', id: 'a' },
    action: { type: 'Action', id: 'tools/call' },
    resource: { type: 'Tool', id: 't' },
    context: c as never,
    entities: [],
    policies: { staticPolicies: set },
  });
  if (answer.type !== 'success' || answer.response.diagnostics.errors.length > 0) return 'error';
  return { decision: answer.response.decision, reason: [...answer.response.diagnostics.reason].sort() };
}

type Drafted = { effect: string; conditions: unknown[] };

/** Residual-shaped policies (scopes All) named p0, p1, … */
const residualSet = (ps: readonly Drafted[]): Record<string, PolicyJson> =>
  Object.fromEntries(
    ps.map((p, i) => [
      `p${i}`,
      {
        effect: p.effect,
        principal: { op: 'All' },
        action: { op: 'All' },
        resource: { op: 'All' },
        conditions: p.conditions,
      } as PolicyJson,
    ]),
  );

/** Holds every JS answer to Cedar's over the same residuals and context; counts how many it gave. */
function compareWithCedar(
  set: Record<string, PolicyJson>,
  contexts: readonly Record<string, unknown>[],
  tally: { compared: number; answered: number },
): void {
  const evaluate: CompiledResiduals | null = compileResiduals(set);
  assert.ok(evaluate, JSON.stringify(set));
  for (const c of contexts) {
    tally.compared++;
    const js: ReturnType<CompiledResiduals> = evaluate(c);
    if (js === BAIL) continue;
    tally.answered++;
    const jsDecision: { decision: string; reason: string[] } = {
      decision: js.decision,
      reason: [...js.reason].sort(),
    };
    assert.deepEqual(jsDecision, cedarDecides(set, c), JSON.stringify({ set, c }));
  }
}

describe('residual policies evaluated in JS', () => {
  it('answers only where Cedar answers without an error, and then exactly as Cedar does', () => {
    const tally = { compared: 0, answered: 0 };
    fc.assert(
      fc.property(policies, fc.array(context, { minLength: 1, maxLength: 4 }), (ps, contexts) => {
        const set = residualSet(ps);
        if (cedar.checkParsePolicySet({ staticPolicies: set }).type !== 'success') return;
        if (compileResiduals(set)) compareWithCedar(set, contexts, tally);
      }),
      { numRuns: RUNS },
    );
    // The comparison is not vacuous: the evaluator answers a fair share itself.
    // Most random expressions are ill-typed and go to Cedar; some 10 % are answered in JS.
    assert.ok(tally.answered > tally.compared / 40, `${tally.answered} of ${tally.compared} answered in JS`);
  });

  it('decides well-typed residuals exactly as Cedar does', () => {
    const tally = { compared: 0, answered: 0 };
    const policy = fc.record({
      effect: fc.constantFrom('permit', 'forbid'),
      conditions: fc.array(fc.record({ kind: fc.constantFrom('when', 'unless'), body: typed.bool }), {
        minLength: 1,
        maxLength: 2,
      }),
    });
    fc.assert(
      fc.property(
        fc.array(policy, { minLength: 1, maxLength: 3 }),
        fc.array(typedContext, { minLength: 1, maxLength: 6 }),
        (ps, contexts) => compareWithCedar(residualSet(ps), contexts, tally),
      ),
      { numRuns: RUNS },
    );
    assert.ok(tally.answered > tally.compared / 3, `${tally.answered} of ${tally.compared} answered in JS`);
  });

  it('decides the gateway benchmark call the way Cedar does, without Cedar', () => {
    const guard = (body: unknown, effect: 'permit' | 'forbid', id: string): [string, PolicyJson] => [
      id,
      {
        effect,
        principal: { op: 'All' },
        action: { op: 'All' },
        resource: { op: 'All' },
        conditions: [{ kind: 'when', body }],
      } as PolicyJson,
    ];
    const set = Object.fromEntries([
      guard({ '!': { arg: binary('==', attr(ctx, 'reason'), { Value: '' }) } }, 'permit', 'reason'),
      guard({ '!': { arg: binary('<', attr(ctx, 'risk'), { Value: 90 }) } }, 'forbid', 'risk'),
      guard(binary('&&', attr(attr(ctx, 'session'), 'sensitiveRead'), { Value: false }), 'forbid', 'egress'),
      // What `!context.detected.secrets.isEmpty() && (resource.tier == "write" || resource.egress)` leaves for a read tool.
      guard(
        binary(
          '&&',
          { '!': { arg: { isEmpty: { arg: attr(attr(ctx, 'detected'), 'secrets') } } } },
          { Value: false },
        ),
        'forbid',
        'secrets-out',
      ),
    ]);
    const evaluate = compileResiduals(set);
    assert.ok(evaluate);
    const c = {
      reason: 'ticket 42',
      risk: 0,
      session: { sensitiveRead: true },
      detected: { secrets: ['aws'] },
    };
    assert.deepEqual(evaluate(c), { decision: 'allow', reason: ['reason'] });
    assert.deepEqual(evaluate({ ...c, risk: 95 }), { decision: 'deny', reason: ['risk'] });
    assert.deepEqual(evaluate({ ...c, reason: '' }), { decision: 'deny', reason: [] });
    // What Cedar would read differently (a float, a lone surrogate, an escape) goes to Cedar.
    assert.equal(evaluate({ ...c, risk: 0.5 }), BAIL);
    assert.equal(evaluate({ ...c, reason: '\ud800' }), BAIL);
    assert.equal(evaluate({ ...c, extra: { __extn: { fn: 'ip', arg: '1.2.3.4' } } }), BAIL);
    assert.deepEqual(evaluate({ ...c, detected: { secrets: [] } }), {
      decision: 'allow',
      reason: ['reason'],
    });
    assert.equal(evaluate({ ...c, detected: { secrets: 'aws' } }), BAIL);
    assert.equal(evaluate({ reason: 'x', risk: 0 }), BAIL);
  });

  it('leaves to Cedar every context JSON.stringify would give Cedar differently (review findings)', () => {
    const read = (body: unknown) =>
      compileResiduals({
        p: {
          effect: 'permit',
          principal: { op: 'All' },
          action: { op: 'All' },
          resource: { op: 'All' },
          conditions: [{ kind: 'when', body }],
        } as PolicyJson,
      })!;
    const ok = read(attr(attr(ctx, 'r'), 'ok'));
    class WithToJson {
      ok = true;
      toJSON() {
        return { ok: false };
      }
    }
    const getter = Object.defineProperty({}, 'ok', { get: () => true, enumerable: true });
    const hidden = Object.defineProperty({}, 'ok', { value: true, enumerable: false });
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    for (const r of [{ ok: true, '\ud800': 1 }, new WithToJson(), getter, hidden, { ok: true, deep }]) {
      assert.equal(ok({ r }), BAIL, JSON.stringify(r));
    }
    assert.deepEqual(ok({ r: { ok: true } }), { decision: 'allow', reason: ['p'] });
    // biome-ignore lint/suspicious/noSparseArray: a hole is the point
    const holes = [1, , 2];
    assert.equal(read(binary('contains', attr(ctx, 's'), { Value: 2 }))({ s: holes }), BAIL);
  });
});
