import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Principal } from '../../src/identity/principal.ts';
import { policySchema } from '../../src/policy/config.ts';
import { PolicyEngine } from '../../src/policy/engine/engine.ts';
import { parsePolicyTexts } from '../../src/policy/engine/policy-set.ts';
import { type CallFacts, toCedar } from '../../src/policy/facts/request.ts';
import { Catalog, type ToolDef } from '../../src/policy/model/catalog.ts';
import { NOTHING_DETECTED } from '../../src/protect/service.ts';

const UPSTREAMS = 4;
const PER_UPSTREAM = 60;

/** A generated catalog: tools with every mix of hints, some tiers set by config, one untrusted upstream. */
function catalog(): Catalog {
  const cfg = policySchema.parse({
    trustAnnotations: ['u0', 'u1', 'u2'],
    tiers: { u0__t3: 'read-sensitive', u1__t4: 'read', u2__t9: 'write' },
  });
  const c = new Catalog(cfg);
  for (let u = 0; u < UPSTREAMS; u++) {
    c.updateTools(
      `u${u}`,
      Array.from({ length: PER_UPSTREAM }, (_, t) => ({
        name: `u${u}__t${t}`,
        inputSchema: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
        annotations: { readOnlyHint: t % 2 === 0, openWorldHint: t % 5 === 0, destructiveHint: t % 7 === 0 },
      })),
    );
  }
  return c;
}

/** Policies that tell tools apart every way Cedar can: by tier, server, uid in a condition or the scope, arguments. */
const POLICIES = [
  '@id("read") permit(principal, action in Action::"tools/call", resource is Tool) when { resource.tier == "read" };',
  '@id("write-eng") permit(principal in Group::"eng", action in Action::"tools/call", resource is Tool) when { resource.tier == "write" };',
  '@id("no-u3") forbid(principal, action, resource in Server::"u3") unless { principal in Group::"admins" };',
  '@id("admins") permit(principal in Group::"admins", action, resource);',
  '@id("one-tool") permit(principal, action in Action::"tools/call", resource in Server::"u1") when { resource == Tool::"u1__t7" };',
  '@id("hide-one") forbid(principal, action, resource in Server::"u0") when { resource == Tool::"u0__t2" && !(principal in Group::"admins") };',
  '@id("scoped") permit(principal, action == Action::"tools/call:u2__t11", resource);',
  '@id("scoped-forbid") forbid(principal, action in [Action::"tools/call:u0__t4", Action::"tools/call:u1__t4"], resource) when { principal.user == "bob" };',
  '@id("args") forbid(principal, action == Action::"tools/call:u1__t10", resource) unless { context.input.path like "/srv/*" };',
  '@id("args-all") forbid(principal, action == Action::"tools/call:u1__t12", resource) when { context.reason == "" || true };',
  '@id("egress") forbid(principal, action in Action::"tools/call", resource is Tool) when { resource.egress && principal.user == "carol" };',
  '@id("sensitive") forbid(principal, action in Action::"tools/call", resource is Tool) when { resource.tier == "read-sensitive" && !principal.scopes.contains("read:sensitive") };',
  '@id("destructive") forbid(principal, action in Action::"tools/call", resource is Tool) when { resource.annotations.destructiveHint && context.session.callsLastMinute > 5 };',
  '@id("action-uid") forbid(principal, action, resource in Server::"u2") when { action == Action::"tools/call:u2__t1" && principal.user == "alice" };',
  '@id("risky") forbid(principal, action in Action::"tools/call", resource is Tool) when { context.risk > 60 && context.approval.granted == false };',
];

const caller = (user: string, groups: string[], scopes: string[] = []): Principal =>
  Object.freeze({
    id: `jwt:${user}`,
    authMethod: 'jwt',
    user,
    scopes,
    claims: Object.freeze({ groups }),
  }) as Principal;

const CALLERS = [
  caller('alice', ['eng']),
  caller('bob', []),
  caller('carol', ['eng'], ['read:sensitive']),
  caller('root', ['admins']),
];

function listFacts(principal: Principal, tool: ToolDef, callsLastMinute: number): CallFacts {
  return {
    principal,
    method: 'tools/list',
    target: { kind: 'tool', tool },
    input: {},
    reason: '',
    now: Date.UTC(2026, 10, 24, 10),
    utcOffsetMinutes: 0,
    network: { address: '10.1.2.3', transport: 'http' },
    session: { callsLastMinute, toolsUsed: [], sensitiveRead: false, tainted: false, toolsFull: false },
    approval: { granted: false, breakGlass: false },
    request: { signed: false },
    detected: NOTHING_DETECTED,
  };
}

describe('listing a caller’s tools', () => {
  it('hides and shows exactly the tools a separate decision per tool does, on a generated catalog, list after list', () => {
    const tools = catalog();
    const source = parsePolicyTexts([{ file: 'listing.cedar', text: POLICIES.join('\n') }]);
    const fast = new PolicyEngine(source, tools);
    const perTool = new PolicyEngine(source, tools, { shareListings: false });
    assert.deepEqual(fast.validate(), []);
    let hidden = 0;
    for (const round of [0, 1]) {
      for (const principal of CALLERS) {
        for (const calls of [0, 9]) {
          for (const tool of tools.allTools()) {
            const expected = perTool.mayUse(toCedar(listFacts(principal, tool, calls)));
            const got = fast.mayUse(toCedar(listFacts(principal, tool, calls)));
            assert.equal(got, expected, `${principal.id} ${tool.name} calls=${calls} round ${round}`);
            if (!expected) hidden++;
          }
        }
      }
    }
    // The set does hide and show: the comparison is not between two constant answers.
    assert.ok(hidden > 0 && hidden < 2 * CALLERS.length * 2 * tools.allTools().length);
  });
});

describe('listing tools the policies name beside tools they do not', () => {
  const SAME = Array.from({ length: 40 }, (_, t) => ({
    name: `u0__t${t}`,
    inputSchema: { type: 'object', properties: {} },
  }));
  const source = parsePolicyTexts([
    {
      file: 'named.cedar',
      text: [
        '@id("all") permit(principal, action in Action::"tools/call", resource is Tool);',
        '@id("hide-t5") forbid(principal, action, resource) when { resource == Tool::"u0__t5" };',
        '@id("hide-t9") forbid(principal, action == Action::"tools/call:u0__t9", resource);',
      ].join('\n'),
    },
  ]);

  for (const order of ['as listed', 'reversed'] as const) {
    it(`hides exactly the tools a policy names by uid among identical ones, listed ${order}`, () => {
      const tools = new Catalog(policySchema.parse({}));
      tools.updateTools('u0', SAME);
      const engine = new PolicyEngine(source, tools);
      assert.deepEqual(engine.validate(), []);
      const all = order === 'as listed' ? tools.allTools() : [...tools.allTools()].reverse();
      for (const round of [0, 1]) {
        const shown = all.filter((tool) => engine.mayUse(toCedar(listFacts(CALLERS[0]!, tool, 0))));
        const hidden = all.filter((t) => !shown.includes(t)).map((t) => t.name);
        assert.deepEqual(hidden.sort(), ['u0__t5', 'u0__t9'], `round ${round}`);
      }
    });
  }
});
