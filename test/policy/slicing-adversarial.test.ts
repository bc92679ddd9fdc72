import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Principal } from '../../src/identity/principal.ts';
import { cedar } from '../../src/policy/engine/cedar.ts';
import { PolicyEngine } from '../../src/policy/engine/engine.ts';
import { parsePolicyTexts } from '../../src/policy/engine/policy-set.ts';
import { type CallFacts, type CedarRequest, type Target, toCedar } from '../../src/policy/facts/request.ts';
import { MemorySessionFacts } from '../../src/policy/facts/session-facts.ts';
import { alice, catalogWith, engineFor, FROZEN_NOW, facts, wholeSetAnswer } from './fixtures.ts';

const catalog = catalogWith();
const NUM_RUNS = Number(process.env.SLICING_RUNS ?? 150);

/** What Cedar decides over the WHOLE set on the UNTRIMMED request (any evaluation error denies, as the engine does). */
function wholeDecision(engine: PolicyEngine, req: CedarRequest) {
  const answer = wholeSetAnswer(engine, req);
  assert.equal(answer.type, 'success', JSON.stringify(answer));
  if (answer.type !== 'success') throw new Error('unreachable');
  const { decision, diagnostics } = answer.response;
  const effect = decision === 'allow' && diagnostics.errors.length === 0 ? 'allow' : 'deny';
  return { effect, reason: [...diagnostics.reason].sort(), errored: diagnostics.errors.length > 0 };
}

/**
 * Discovery over the WHOLE set: hidden when a forbid is satisfied whatever the
 * unknown call context is, shown when some permit is satisfied or may be.
 */
function wholeMayUse(engine: PolicyEngine, req: CedarRequest): boolean {
  const unknown = (arg: string) => ({ __extn: { fn: 'unknown', arg } });
  const answer = cedar.isAuthorizedPartial({
    principal: req.principal,
    action: req.action,
    resource: req.resource,
    context: {
      ...req.context,
      input: unknown('input'),
      reason: unknown('reason'),
      approval: unknown('approval'),
      risk: unknown('risk'),
    } as never,
    entities: req.entities,
    policies: { staticPolicies: Object.fromEntries(engine.source.policies.map((p) => [p.id, p.text])) },
  });
  if (answer.type !== 'residuals' || answer.response.errored.length > 0) return false;
  const forbids = new Set(engine.source.policies.filter((p) => p.effect === 'forbid').map((p) => p.id));
  const { satisfied, nontrivialResiduals } = answer.response;
  if (satisfied.some((id) => forbids.has(id))) return false;
  return [...satisfied, ...nontrivialResiduals].some((id) => !forbids.has(id));
}

describe('slicing never decides other than the whole set (adversarial)', () => {
  it('does not let a policy id holding NUL make two slices share one pre-parsed set', () => {
    // Slice ["a","b","c"] and slice ["a","b\0c"] hash the same `ids.join("\0")`.
    const text = String.raw`
@id("a") permit(principal, action, resource);
@id("b") permit(principal in Group::"g1", action, resource);
@id("c") permit(principal in Group::"g1", action, resource);
@id("b\0c") forbid(principal in Group::"g2", action, resource);
`;
    const engine = engineFor(text, catalog);
    assert.deepEqual(engine.validate(), []);
    const call = (groups: string[]) =>
      toCedar(
        facts(catalog, 'fs__read_text_file', {
          principal: { ...alice, claims: { groups } },
          input: { path: '/a' },
        }),
      );
    assert.equal(engine.decide(call(['g1'])).effect, 'allow');
    const inG2 = call(['g2']);
    assert.equal(wholeDecision(engine, inG2).effect, 'deny');
    assert.equal(engine.decide(inG2).effect, 'deny');
  });

  const principalScopes = [
    'principal',
    'principal == Caller::"jwt:alice"',
    'principal in Caller::"jwt:bob"',
    'principal in Group::"g1"',
    'principal in Group::"g3"',
    'principal is Caller',
    'principal is Caller in Group::"g2"',
    'principal in User::"alice"',
    'principal in Workload::"agent-1"',
    'principal == Caller::"nobody"',
  ];
  const actionScopes = [
    'action',
    'action in Action::"tools/call"',
    'action == Action::"tools/call:fs__read_text_file"',
    'action in [Action::"tools/call:fs__write_file", Action::"resources/read"]',
    'action == Action::"resources/read"',
    'action in [Action::"prompts/get", Action::"mcp/other"]',
  ];
  const resourceScopes = [
    'resource',
    'resource in Server::"fs"',
    'resource in Server::"other"',
    'resource is Tool',
    'resource is Tool in Server::"fs"',
    'resource == Tool::"fs__write_file"',
    'resource is Resource',
    'resource is Prompt in Server::"fs"',
    'resource == Server::"fs"',
  ];
  /** Valid for every action and resource type. */
  const anywhere = [
    'principal.hasTag("dept") && principal.getTag("dept") == "platform"',
    'principal.hasTag(context.method)',
    'principal in Group::"g2"',
    'principal in [Group::"g1", Group::"g3"]',
    'principal is Caller in [Group::"g3"]',
    'principal in [User::"bob", User::"alice"] || principal in Workload::"agent-1"',
    'context has session.toolsUsed && context.session.toolsUsed.contains("fs__write_file")',
    'context.session.toolsUsed.containsAny(["fs__write_file", "x"])',
    'context.session.toolsUsed.isEmpty()',
    'context.session.callsLastMinute > 2',
    'context.network.address.isInRange(ip("10.0.0.0/8"))',
    'context.network.address.isLoopback()',
    'context.time.hour >= 9 && context.time.hour < 17',
    'if context.approval.granted then context.risk < 50 else context.risk < 30',
    'context["approval"]["breakGlass"]',
    'context.reason like "ticket *"',
    'principal.scopes.contains("tools")',
    'principal["authMethod"] == "jwt" && principal has user && principal.user != ""',
    'context == context',
    'context.network == context.network',
    '{x: context.time}.x.hour > 3',
    'principal == Caller::"jwt:alice"',
    'action in Action::"tools/call"',
    'action in [Action::"resources/read", Action::"prompts/get"]',
    'resource in Server::"fs"',
    'resource is Tool',
    'resource is Tool in [Server::"fs"]',
    'context has approval.granted && !context.approval.granted',
    'context.time.weekday == 2 || context.session.sensitiveRead',
    'context.session.tainted || context.session.callsLastMinute > 3',
    'decimal("1.5").lessThan(decimal("2.0")) && context.risk >= 0',
  ];
  /** Only where the resource is surely a tool (and the action a tool call). */
  const onTools = [
    'resource.tier == "read"',
    'resource.annotations.readOnlyHint',
    'context.input has path && context.input.path like "/srv/*"',
    'resource has egress && resource.egress',
    'context has input.path',
    'resource.server == "fs" && resource has annotations.destructiveHint',
  ];
  const clause = (pool: string[]) =>
    fc.oneof(
      fc.constantFrom(...pool),
      fc
        .tuple(fc.constantFrom(...pool), fc.constantFrom(' && ', ' || '), fc.constantFrom(...pool))
        .map(([a, op, b]) => `(${a})${op}(${b})`),
      fc.constantFrom(...pool).map((a) => `!(${a})`),
    );
  const conditions = (pool: string[]) =>
    fc
      .array(fc.tuple(fc.constantFrom('when', 'unless'), clause(pool)), { maxLength: 2 })
      .map((cs) => cs.map(([k, c]) => `${k} { ${c} }`).join(' '));
  const policy = fc.oneof(
    fc.record({
      effect: fc.constantFrom('permit', 'forbid'),
      principal: fc.constantFrom(...principalScopes),
      action: fc.constantFrom(...actionScopes),
      resource: fc.constantFrom(...resourceScopes),
      condition: conditions(anywhere),
    }),
    fc.record({
      effect: fc.constantFrom('permit', 'forbid'),
      principal: fc.constantFrom(...principalScopes),
      action: fc.constantFrom(
        'action in Action::"tools/call"',
        'action == Action::"tools/call:fs__write_file"',
      ),
      resource: fc.constantFrom('resource is Tool', 'resource is Tool in Server::"fs"'),
      condition: conditions([...anywhere, ...onTools]),
    }),
  );
  const targets: [string, (c: typeof catalog) => Target][] = [
    ['tools/call', (c) => ({ kind: 'tool', tool: c.tool('fs__read_text_file')! })],
    ['tools/call', (c) => ({ kind: 'tool', tool: c.tool('fs__write_file')! })],
    ['tools/call', (c) => ({ kind: 'tool', tool: c.tool('fs__send_report')! })],
    ['resources/read', () => ({ kind: 'resource', uri: 'file:///srv/a', server: 'fs' })],
    ['prompts/get', () => ({ kind: 'prompt', name: 'p', server: 'fs' })],
    ['ping', () => ({ kind: 'server', server: 'fs' })],
  ];
  const request = fc.record({
    id: fc.constantFrom('jwt:alice', 'jwt:bob'),
    user: fc.constantFrom('alice', 'bob', undefined),
    workload: fc.constantFrom('agent-1', undefined),
    authMethod: fc.constantFrom('jwt', 'none'),
    groups: fc.subarray(['g1', 'g2', 'g3']),
    dept: fc.constantFrom('platform', 'sales', undefined),
    scopes: fc.subarray(['tools', 'admin']),
    target: fc.nat(targets.length - 1),
    path: fc.constantFrom('/srv/x', '/etc/x'),
    reason: fc.constantFrom('', 'ticket 42'),
    address: fc.constantFrom('10.1.2.3', '127.0.0.1', '203.0.113.5'),
    hourOffset: fc.constantFrom(0, -120, 600),
    toolsUsed: fc.subarray(['fs__write_file', 'fs__read_text_file']),
    callsLastMinute: fc.nat(5),
    sensitiveRead: fc.boolean(),
    tainted: fc.boolean(),
    granted: fc.boolean(),
    breakGlass: fc.boolean(),
    /** A request carrying more of the hierarchy than toCedar does (not flat). */
    deeper: fc.boolean(),
  });
  type Req = typeof request extends fc.Arbitrary<infer R> ? R : never;

  function cedarRequest(r: Req): CedarRequest {
    const principal: Principal = {
      ...alice,
      id: r.id,
      authMethod: r.authMethod as Principal['authMethod'],
      scopes: r.scopes,
      claims: { groups: r.groups, ...(r.dept ? { dept: r.dept } : {}), 'tools/call': 'x' },
    };
    if (r.user) (principal as { user?: string }).user = r.user;
    else delete (principal as { user?: string }).user;
    if (r.workload) (principal as { workload?: string }).workload = r.workload;
    else delete (principal as { workload?: string }).workload;
    const [method, target] = targets[r.target]!;
    const t = target(catalog);
    const input =
      t.kind !== 'tool'
        ? {}
        : t.tool.name === 'fs__send_report'
          ? { to: 'x' }
          : t.tool.name === 'fs__write_file'
            ? { path: r.path, content: 'c' }
            : { path: r.path };
    const f: CallFacts = {
      ...facts(catalog, 'fs__read_text_file', { principal, input }),
      method,
      target: t,
      reason: r.reason,
      utcOffsetMinutes: r.hourOffset,
      network: { address: r.address, transport: 'http' },
      session: {
        callsLastMinute: r.callsLastMinute,
        toolsUsed: r.toolsUsed,
        sensitiveRead: r.sensitiveRead,
        tainted: r.tainted,
        toolsFull: false,
      },
      approval: { granted: r.granted, breakGlass: r.breakGlass },
    };
    const req = toCedar(f);
    if (!r.deeper) return req;
    return {
      ...req,
      entities: [
        ...req.entities,
        { uid: { type: 'Group', id: 'g1' }, attrs: {}, parents: [{ type: 'Group', id: 'g3' }] },
        { uid: { type: 'Group', id: 'g2' }, attrs: {}, parents: [{ type: 'User', id: 'bob' }] },
      ],
    };
  }

  it('decides exactly as Cedar does over the whole set, for richer scopes, conditions and targets', () => {
    let checked = 0;
    let allowed = 0;
    const invalid: string[] = [];
    fc.assert(
      fc.property(
        fc.array(policy, { minLength: 1, maxLength: 7 }),
        fc.array(request, { minLength: 1, maxLength: 5 }),
        fc.constantFrom(0, 1, 2, 1024),
        fc.constantFrom(0, 1, 'never' as const),
        (policies, requests, maxRequestSlices, residualsAfter) => {
          const text = policies
            .map(
              (p, i) =>
                `@id("p${i}") ${p.effect}(${p.principal}, ${p.action}, ${p.resource}) ${p.condition};`,
            )
            .join('\n');
          const engine = new PolicyEngine(parsePolicyTexts([{ file: 't.cedar', text }]), catalog, {
            maxRequestSlices,
            residualsAfter,
          });
          const problems = engine.validate();
          if (problems.length > 0) invalid.push(`${text}\n${problems.join('\n')}`);
          fc.pre(problems.length === 0);
          for (const r of requests) {
            const req = cedarRequest(r);
            const whole = wholeDecision(engine, req);
            // Twice: with residualsAfter 1 the second decision is the first on residuals.
            const first = engine.decide(req);
            const sliced = engine.decide(req);
            const sorted = (d: typeof first) => ({
              ...d,
              determiningPolicies: [...d.determiningPolicies].sort(),
            });
            assert.deepEqual(sorted(sliced), sorted(first));
            checked++;
            if (whole.effect === 'allow') allowed++;
            const why = `${text}\n${JSON.stringify(r)}`;
            assert.equal(sliced.effect, whole.effect, why);
            if (!whole.errored) assert.deepEqual([...sliced.determiningPolicies].sort(), whole.reason, why);
            // Discovery shows only what the whole set may allow (Cedar's own partial
            // evaluation is coarser), and never hides what this very call is allowed.
            const shown = engine.mayUse(req);
            if (shown) assert.equal(wholeMayUse(engine, req), true, `mayUse shows: ${why}`);
            if (whole.effect === 'allow') assert.equal(shown, true, `mayUse hides: ${why}`);
          }
        },
      ),
      { numRuns: NUM_RUNS },
    );
    // The space explored is not degenerate.
    if (process.env.SLICING_STATS) console.error({ checked, allowed, invalid: invalid.length });
    assert.ok(allowed > checked / 20, `${allowed} of ${checked} allowed`);
    assert.ok(invalid.length < NUM_RUNS / 10, invalid.slice(0, 3).join('\n\n'));
  });
});

describe('session facts under a wall clock that steps back', () => {
  // Failed on 24ba74d (counted 1 of 101): the ring overwrote the newest slots.
  it('still counts the calls just made after the clock steps back more than a window', () => {
    const facts = new MemorySessionFacts();
    for (let i = 0; i < 100; i++)
      facts.record('alice', 'fs__read_text_file', FROZEN_NOW, { sensitive: false, tool: true });
    // An NTP step of -61 s: the 100 calls were made within the last second of real time.
    const after = FROZEN_NOW - 61_000;
    facts.record('alice', 'fs__read_text_file', after, { sensitive: false, tool: true });
    assert.ok(facts.snapshot('alice', 'fs__read_text_file', after).callsLastMinute >= 101);
    // Carried calls still expire: a window and a slot later, nothing is counted.
    assert.equal(facts.snapshot('alice', 'fs__read_text_file', after + 62_000).callsLastMinute, 0);
  });
});
