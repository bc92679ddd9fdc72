import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Principal } from '../../src/identity/principal.ts';
import { cedar } from '../../src/policy/engine/cedar.ts';
import { PolicyEngine } from '../../src/policy/engine/engine.ts';
import { parsePolicyTexts } from '../../src/policy/engine/policy-set.ts';
import { attributesNamedIn, contextReadsOf } from '../../src/policy/engine/reads.ts';
import {
  EntityGraph,
  entityKey,
  mayMatch,
  membershipTargetsOf,
  scopeConstraint,
  scopeView,
} from '../../src/policy/engine/scope.ts';
import { type CedarRequest, principalEntity, type Target, toCedar } from '../../src/policy/facts/request.ts';
import { alice, catalogWith, engineFor, facts, wholeSetAnswer } from './fixtures.ts';

const catalog = catalogWith();
const PERMIT_ALL = '@id("all") permit(principal, action, resource);';

const caller = (id: string, groups: string[]): Principal => ({ ...alice, id, claims: { groups } });
const callTo = (
  tool: string,
  principal: Principal = alice,
  input: Record<string, unknown> = { path: '/a' },
) => toCedar(facts(catalog, tool, { principal, input }));

describe('slicing by principal and resource scope', () => {
  it('still denies a caller in g by a forbid scoped to principal in Group g', () => {
    const engine = engineFor(
      `${PERMIT_ALL}\n@id("f") forbid(principal in Group::"g", action, resource);`,
      catalog,
    );
    const d = engine.decide(callTo('fs__read_text_file', caller('in-g', ['other', 'g'])));
    assert.equal(d.effect, 'deny');
    assert.deepEqual(d.determiningPolicies, ['f']);
    assert.equal(engine.decide(callTo('fs__read_text_file', caller('not-in-g', ['other']))).effect, 'allow');
  });

  it('still denies every tool on server s by a forbid scoped to resource in Server s', () => {
    const engine = engineFor(
      `${PERMIT_ALL}\n@id("f") forbid(principal, action, resource in Server::"fs");`,
      catalog,
    );
    for (const tool of ['fs__read_text_file', 'fs__write_file', 'fs__send_report']) {
      const d = engine.decide(callTo(tool, alice, tool === 'fs__send_report' ? { to: 'x' } : { path: '/a' }));
      assert.equal(d.effect, 'deny', tool);
      assert.deepEqual(d.determiningPolicies, ['f']);
    }
    const elsewhere = engineFor(
      `${PERMIT_ALL}\n@id("f") forbid(principal, action, resource in Server::"other");`,
      catalog,
    );
    assert.equal(elsewhere.decide(callTo('fs__read_text_file')).effect, 'allow');
  });

  it('applies a policy naming the caller itself, and only to that caller', () => {
    const engine = engineFor(
      `${PERMIT_ALL}\n@id("f") forbid(principal == Caller::"jwt:alice", action, resource);\n@id("g") forbid(principal in Caller::"jwt:alice", action, resource);`,
      catalog,
    );
    assert.deepEqual([...engine.decide(callTo('fs__read_text_file')).determiningPolicies].sort(), ['f', 'g']);
    assert.equal(engine.decide(callTo('fs__read_text_file', caller('jwt:bob', []))).effect, 'allow');
  });

  it('matches `is` scopes by type, with and without `in`', () => {
    const engine = engineFor(
      `${PERMIT_ALL}\n@id("f") forbid(principal is Caller in Group::"engineers", action, resource is Tool in Server::"fs");`,
      catalog,
    );
    assert.equal(engine.decide(callTo('fs__read_text_file')).effect, 'deny');
    assert.equal(engine.decide(callTo('fs__read_text_file', caller('x', ['ops']))).effect, 'allow');
  });

  it('keeps a forbid on a group the caller is in only through a deeper hierarchy the request carries', () => {
    const engine = engineFor(
      `${PERMIT_ALL}\n@id("f") forbid(principal in Group::"org", action, resource);`,
      catalog,
    );
    const req = callTo('fs__read_text_file');
    assert.equal(engine.decide(req).effect, 'allow');
    const deeper: CedarRequest = {
      ...req,
      entities: [
        ...req.entities,
        { uid: { type: 'Group', id: 'engineers' }, attrs: {}, parents: [{ type: 'Group', id: 'org' }] },
      ],
    };
    assert.equal(engine.decide(deeper).effect, 'deny');
  });

  it('keeps a scope shape it does not understand', () => {
    const slot = scopeConstraint({ op: 'in', slot: '?principal' });
    const newer = scopeConstraint({ op: 'like', pattern: '*' });
    assert.deepEqual(slot, { op: 'unknown' });
    assert.deepEqual(newer, { op: 'unknown' });
    const nobody = scopeView({ type: 'Caller', id: 'x' }, new Set(), new Set());
    assert.equal(mayMatch(slot, nobody), true);
    assert.equal(mayMatch(newer, nobody), true);
  });

  it('reads scope constraints from the parsed policy', () => {
    const [p] = parsePolicyTexts([
      {
        file: 't.cedar',
        text: 'permit(principal is Caller in Group::"g", action, resource == Tool::"fs__write_file");',
      },
    ]).policies;
    assert.deepEqual(p!.principal, { op: 'is', entityType: 'Caller', in: { type: 'Group', id: 'g' } });
    assert.deepEqual(p!.resource, { op: '==', entity: { type: 'Tool', id: 'fs__write_file' } });
  });

  it('hides a tool from a caller outside the only permit group, and shows it to one inside', () => {
    const engine = engineFor(
      '@id("p") permit(principal in Group::"engineers", action == Action::"tools/call:fs__read_text_file", resource) when { context.input.path like "/srv/*" };',
      catalog,
    );
    assert.equal(engine.mayUse(callTo('fs__read_text_file')), true);
    assert.equal(engine.mayUse(callTo('fs__read_text_file', caller('x', ['ops']))), false);
  });

  it('bounds the cached slices, and past the bound decides on the action slice just the same', () => {
    const groups = ['g0', 'g1', 'g2', 'g3'];
    const text = [
      ...groups.map((g) => `@id("p-${g}") permit(principal in Group::"${g}", action, resource);`),
      '@id("f") forbid(principal in Group::"g3", action, resource);',
    ].join('\n');
    const engine = new PolicyEngine(parsePolicyTexts([{ file: 't.cedar', text }]), catalog, {
      maxRequestSlices: 2,
    });
    const effects = groups.map((g) => engine.decide(callTo('fs__read_text_file', caller(g, [g]))).effect);
    assert.deepEqual(effects, ['allow', 'allow', 'allow', 'deny']);
    assert.equal(engine.cachedSlices, 2);
  });

  it('decides exactly as Cedar does over the whole set, for any scopes, callers and tools', () => {
    const principalScopes = [
      'principal',
      'principal == Caller::"a"',
      'principal in Caller::"b"',
      'principal in Group::"g1"',
      'principal in Group::"g2"',
      'principal is Caller',
      'principal is Caller in Group::"g3"',
      'principal in User::"alice"',
      'principal in Workload::"agent-1"',
    ];
    const resourceScopes = [
      'resource',
      'resource == Tool::"fs__read_text_file"',
      'resource in Server::"fs"',
      'resource in Server::"other"',
      'resource is Tool',
      'resource is Tool in Server::"fs"',
      'resource in Tool::"fs__write_file"',
    ];
    const conditions = [
      '',
      'when { principal.hasTag("dept") && principal.getTag("dept") == "platform" }',
      'when { context.input has path && context.input.path like "/srv/*" }',
      'when { principal in Group::"g2" }',
      'unless { resource.tier == "read" }',
      'when { context.session.toolsUsed.contains("fs__write_file") }',
      'when { principal.scopes.contains("tools") && context.reason != "" }',
    ];
    const policy = fc.record({
      effect: fc.constantFrom('permit', 'forbid'),
      principal: fc.constantFrom(...principalScopes),
      resource: fc.constantFrom(...resourceScopes),
      condition: fc.constantFrom(...conditions),
    });
    const request = fc.record({
      id: fc.constantFrom('a', 'b', 'c'),
      groups: fc.subarray(['g1', 'g2', 'g3']),
      dept: fc.constantFrom('platform', 'sales'),
      tool: fc.constantFrom('fs__read_text_file', 'fs__write_file'),
      path: fc.constantFrom('/srv/x', '/etc/x'),
      toolsUsed: fc.subarray(['fs__write_file', 'fs__read_text_file']),
    });
    fc.assert(
      fc.property(
        fc.array(policy, { minLength: 1, maxLength: 6 }),
        fc.array(request, { minLength: 1, maxLength: 4 }),
        fc.constantFrom(0, 'never' as const),
        (policies, requests, residualsAfter) => {
          const text = policies
            .map(
              (p, i) =>
                `@id("p${i}") ${p.effect}(${p.principal}, action in Action::"tools/call", ${p.resource}) ${p.condition};`,
            )
            .join('\n');
          const engine = new PolicyEngine(parsePolicyTexts([{ file: 'test.cedar', text }]), catalog, {
            residualsAfter,
          });
          assert.deepEqual(engine.validate(), []);
          for (const r of requests) {
            const principal = { ...alice, id: r.id, claims: { groups: r.groups, dept: r.dept } };
            const req = toCedar({
              ...facts(catalog, r.tool, { principal, input: { path: r.path } }),
              session: {
                callsLastMinute: 0,
                toolsUsed: r.toolsUsed,
                sensitiveRead: false,
                tainted: false,
                toolsFull: false,
              },
            });
            const whole = wholeSetAnswer(engine, req);
            assert.equal(whole.type, 'success');
            if (whole.type !== 'success') return;
            const sliced = engine.decide(req);
            assert.equal(sliced.effect, whole.response.decision, text);
            assert.deepEqual(
              [...sliced.determiningPolicies].sort(),
              [...whole.response.diagnostics.reason].sort(),
              text,
            );
          }
        },
      ),
      { numRuns: Number(process.env.SLICING_RUNS ?? 60) },
    );
  });
});

describe('pre-parsed sets across reloads', () => {
  it('names a slice by its own policies, so a reload that changed others parses it into the same id', () => {
    const read = '@id("r") permit(principal, action, resource) when { context.reason != "" };';
    const write = (limit: string) =>
      `@id("w") forbid(principal, action == Action::"tools/call:fs__write_file", resource) when { context.input.content like "${limit}" };`;
    const idOf = (...texts: string[]) =>
      new PolicyEngine(parsePolicyTexts([{ file: 't.cedar', text: texts.join('\n') }]), catalog, {
        residualsAfter: 'never',
      }).decisionCallFor(callTo('fs__read_text_file'))?.preparsedPolicySetId;
    // The write forbid is sliced away from a read call: editing it leaves the read slice as it was.
    assert.equal(idOf(read, write('*a*')), idOf(read, write('*b*')));
    assert.notEqual(idOf(read), idOf(read.replace('!=', '==')));
    assert.notEqual(idOf(read), idOf(read.replace('"r"', '"r2"')));
  });
});

describe('what Cedar is sent', () => {
  it('passes exactly the principal, resource and action entities, whose ancestors are their parents', () => {
    const targets: Target[] = [
      { kind: 'tool', tool: catalog.tool('fs__read_text_file')! },
      { kind: 'resource', uri: 'file:///a', server: 'fs' },
      { kind: 'prompt', name: 'p', server: 'fs' },
      { kind: 'server', server: 'fs' },
    ];
    for (const target of targets) {
      const req = toCedar({ ...facts(catalog, 'fs__read_text_file'), target });
      assert.deepEqual(
        req.entities.map((e) => e.uid),
        [req.principal, req.resource, { type: 'Action', id: req.action.id }],
      );
      const graph = EntityGraph.of(req.entities)!;
      assert.equal(graph.flat, true, target.kind);
      for (const e of req.entities)
        assert.deepEqual(
          [...graph.ancestors(e.uid as { type: string; id: string })].sort(),
          e.parents.map((p) => entityKey(p as { type: string; id: string })).sort(),
        );
    }
  });

  it('sends tags only to a slice that reads them', () => {
    const plain = engineFor(PERMIT_ALL, catalog).cedarCallFor(callTo('fs__read_text_file'))!;
    assert.equal(plain.entities[0]!.tags, undefined);
    const tagged = engineFor(
      '@id("t") permit(principal, action, resource) when { principal.hasTag("dept") };',
      catalog,
    ).cedarCallFor(callTo('fs__read_text_file'))!;
    assert.deepEqual(tagged.entities[0]!.tags, { groups: '["engineers"]', dept: 'platform' });
  });

  it('sends the context along the read paths only, and the entity attributes the policies name', () => {
    const call = engineFor(
      '@id("r") permit(principal, action, resource) when { context.session.sensitiveRead == false && context.input has path && principal.authenticated };',
      catalog,
    ).cedarCallFor(callTo('fs__read_text_file'))!;
    assert.deepEqual(call.context, { session: { sensitiveRead: false }, input: { path: '/a' } });
    assert.deepEqual(call.entities[0]!.attrs, { authenticated: true });
    assert.deepEqual(call.entities[1]!.attrs, {});
  });

  it('sends the whole context to a policy that reads it wholly', () => {
    const req = callTo('fs__read_text_file');
    const call = engineFor(
      '@id("r") permit(principal, action, resource) when { context == context };',
      catalog,
    ).cedarCallFor(req)!;
    assert.deepEqual(call.context, req.context);
  });

  it('sends only the parents a policy can test membership in', () => {
    const call = engineFor(
      '@id("r") permit(principal in Group::"engineers", action in Action::"tools/call", resource);',
      catalog,
    ).cedarCallFor(callTo('fs__read_text_file'))!;
    assert.deepEqual(call.entities[0]!.parents, [{ type: 'Group', id: 'engineers' }]);
    assert.deepEqual(call.entities[1]!.parents, []);
    assert.deepEqual(call.entities[2]!.parents, [{ type: 'Action', id: 'tools/call' }]);
  });

  it('sends every parent when a condition tests membership in something not written out', () => {
    const targets = membershipTargetsOf(
      cedar.policyToJson('permit(principal, action, resource) when { principal in resource.owner };').type ===
        'success'
        ? (
            cedar.policyToJson(
              'permit(principal, action, resource) when { principal in resource.owner };',
            ) as {
              json: unknown;
            }
          ).json
        : undefined,
    );
    assert.equal(targets, true);
  });
});

describe('read analysis', () => {
  const conditionsOf = (text: string): unknown => {
    const json = cedar.policyToJson(text);
    assert.equal(json.type, 'success');
    return json.type === 'success' ? json.json.conditions : undefined;
  };

  it('follows `.`, indexing, escaped names and `has` paths into the context', () => {
    const reads = contextReadsOf(
      conditionsOf(
        'permit(principal, action, resource) when { context has session.toolsUsed && context["\\u{69}nput"].path == "x" && context.risk > 1 };',
      ),
    );
    assert.deepEqual(
      reads,
      new Map<string, unknown>([
        ['session', new Map([['toolsUsed', true]])],
        ['input', new Map([['path', true]])],
        ['risk', true],
      ]),
    );
  });

  it('counts any other use of the context as reading it wholly', () => {
    const reads = contextReadsOf(
      conditionsOf(
        'permit(principal, action, resource) when { (if true then context else context).risk > 1 };',
      ),
    );
    assert.equal(reads, true);
  });

  it('names every attribute accessed, whatever it is accessed on', () => {
    const names = attributesNamedIn(
      conditionsOf(
        'permit(principal, action, resource) when { resource.annotations.readOnlyHint && principal has user };',
      ),
    );
    assert.deepEqual(names, new Set(['annotations', 'readOnlyHint', 'user']));
  });
});

describe('the principal entity', () => {
  it('is built once per frozen Principal, and frozen', () => {
    const frozen = Object.freeze({ ...alice, claims: Object.freeze({ groups: ['g'] }) });
    const entity = principalEntity(frozen);
    assert.equal(principalEntity(frozen), entity);
    assert.equal(Object.isFrozen(entity.attrs), true);
    assert.deepEqual(entity.parents, [
      { type: 'Workload', id: 'agent-1' },
      { type: 'User', id: 'alice' },
      { type: 'Group', id: 'g' },
    ]);
  });

  it('is built afresh for a Principal that could still change', () => {
    assert.notEqual(principalEntity(alice), principalEntity(alice));
  });
});
