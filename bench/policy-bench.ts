#!/usr/bin/env node
/**
 * Policy decision cost, two shapes of 100 policies:
 *
 * - synthetic: 100 policies over 1,000 tools (10 upstreams × 100), each
 *   decision on a random tool with typed arguments, the way the authorize
 *   stage makes it (facts → Cedar request → sliced, pre-parsed set);
 * - realistic: the gateway benchmark's set (`realisticPolicySet()` in
 *   bench/gateway-configs.ts: team permits per server, forbids on dangerous
 *   tools, contractor rules) and its call, `echo__echo` by a caller in two
 *   groups, through the whole authorize path: session facts snapshot →
 *   Cedar request → decision → record.
 *
 *   node bench/policy-bench.ts [--decisions N]
 *
 * Prints p50/p99 per decision and decisions per second on one core, plus the
 * one-off costs (validation against the generated schema, discovery for one caller).
 */
import { parseArgs } from 'node:util';
import type { Principal } from '../src/identity/principal.ts';
import { policySchema } from '../src/policy/config.ts';
import { cedar } from '../src/policy/engine/cedar.ts';
import { PolicyEngine } from '../src/policy/engine/engine.ts';
import { parsePolicyTexts } from '../src/policy/engine/policy-set.ts';
import { type CallFacts, type SessionSnapshot, toCedar } from '../src/policy/facts/request.ts';
import { MemorySessionFacts } from '../src/policy/facts/session-facts.ts';
import { Catalog, type ToolDef } from '../src/policy/model/catalog.ts';
import { NOTHING_DETECTED } from '../src/protect/service.ts';
import { realisticPolicySet } from './gateway-configs.ts';
import { echoCallRequest } from './lib/echo-call.ts';

const { values } = parseArgs({ options: { decisions: { type: 'string', default: '20000' } } });
const N = Number(values.decisions);
const UPSTREAMS = 10;
const PER_UPSTREAM = 100;

const cfg = policySchema.parse({ trustAnnotations: Array.from({ length: UPSTREAMS }, (_, u) => `up${u}`) });
const catalog = new Catalog(cfg);
for (let u = 0; u < UPSTREAMS; u++) {
  catalog.updateTools(
    `up${u}`,
    Array.from({ length: PER_UPSTREAM }, (_, t) => ({
      name: `up${u}__tool_${t}`,
      inputSchema: {
        type: 'object',
        properties: {
          path: { type: 'string' },
          limit: { type: 'integer' },
          tags: { type: 'array', items: { type: 'string' } },
        },
        required: ['path', 'limit'],
      },
      annotations: { readOnlyHint: t % 3 !== 0, openWorldHint: false, destructiveHint: t % 3 === 0 },
    })),
  );
}

const general = [
  '@id("g-read") permit(principal, action in Action::"tools/call", resource is Tool) when { resource.tier == "read" && context.reason != "" };',
  '@id("g-write") @obligation("approval") permit(principal, action in Action::"tools/call", resource is Tool) when { resource.tier == "write" && context.reason != "" };',
  '@id("g-exfil") forbid(principal, action in Action::"tools/call", resource is Tool) when { context.session.sensitiveRead && (resource.tier == "write" || resource.egress) };',
  '@id("g-rate") forbid(principal, action in Action::"tools/call", resource) when { context.session.callsLastMinute >= 120 };',
  '@id("g-hours") forbid(principal, action, resource) unless { context.time.hour >= 0 && context.time.hour < 24 };',
  '@id("g-risk") forbid(principal, action, resource) when { context.risk > 95 };',
  '@id("g-net") forbid(principal, action, resource) unless { context.network.address.isInRange(ip("10.0.0.0/8")) || context.network.address.isLoopback() };',
  '@id("g-group") permit(principal in Group::"admins", action in Action::"tools/call", resource);',
  '@id("g-scope") forbid(principal, action in Action::"tools/call", resource is Tool) when { resource.tier == "read-sensitive" && !principal.scopes.contains("read:sensitive") };',
  '@id("g-server") forbid(principal, action, resource in Server::"up9") when { !principal.authenticated };',
];
const specific = Array.from({ length: 90 }, (_, i) => {
  const u = i % UPSTREAMS;
  const t = (i * 7) % PER_UPSTREAM;
  return `@id("arg-${i}") forbid(principal, action == Action::"tools/call:up${u}__tool_${t}", resource) unless { context.input.path like "/srv/${u}/*" && context.input.limit <= 1000 };`;
});
const source = parsePolicyTexts([{ file: 'bench.cedar', text: [...general, ...specific].join('\n') }]);
const engine = new PolicyEngine(source, catalog);

let t0 = performance.now();
const problems = engine.validate();
const validateMs = performance.now() - t0;
if (problems.length > 0) throw new Error(problems.join('\n'));

type Effect = 'allow' | 'deny';
/** What the engine sends to Cedar for one request: one full call, as a caller's first calls make it. */
type CedarCall = NonNullable<ReturnType<PolicyEngine['cedarCallFor']>>;

const principal: Principal = {
  id: 'jwt:alice',
  authMethod: 'jwt',
  user: 'alice',
  scopes: ['tools'],
  claims: { groups: ['eng'] },
};
const tools = catalog.allTools();
const factsFor = (tool: ToolDef, i: number): CallFacts => ({
  principal,
  method: 'tools/call',
  target: { kind: 'tool', tool },
  input: { path: `/srv/${tool.upstream.slice(2)}/f${i}.txt`, limit: i % 2000, tags: ['a', 'b'] },
  reason: 'ticket 42',
  now: Date.UTC(2026, 10, 24, 10),
  utcOffsetMinutes: 0,
  network: { address: '10.1.2.3', transport: 'http' },
  session: {
    callsLastMinute: i % 50,
    toolsUsed: ['up0__tool_1'],
    sensitiveRead: false,
    tainted: false,
    toolsFull: false,
  },
  approval: { granted: false, breakGlass: false },
  request: { signed: false },
  detected: NOTHING_DETECTED,
});

// Warm-up: pre-parses every slice once (as the first calls to each tool would).
for (let i = 0; i < tools.length; i++) engine.decide(toCedar(factsFor(tools[i]!, i)));

/** Times `once(i)` N times; p50/p99 in µs, calls per second, and the effects it returned. */
function measure(once: (i: number) => Effect) {
  const samples = new Float64Array(N);
  const effects = { allow: 0, deny: 0 };
  const start = performance.now();
  for (let i = 0; i < N; i++) {
    const s = performance.now();
    const effect = once(i);
    samples[i] = performance.now() - s;
    effects[effect]++;
  }
  const totalMs = performance.now() - start;
  samples.sort();
  const pct = (p: number) => Math.round(samples[Math.min(N - 1, Math.floor((p / 100) * N))]! * 1000);
  return { p50_us: pct(50), p99_us: pct(99), decisions_per_s: Math.round(N / (totalMs / 1000)), effects };
}

const synthetic = measure(
  (i) => engine.decide(toCedar(factsFor(tools[(i * 7919) % tools.length]!, i))).effect,
);

t0 = performance.now();
let visible = 0;
for (const tool of tools) if (engine.mayUse(toCedar(factsFor(tool, 0)))) visible++;
const discoveryMs = performance.now() - t0;

const realistic = measureRealistic();

const figures = {
  policies: source.policies.length,
  tools: tools.length,
  decisions: N,
  ...synthetic,
  validate_ms: Math.round(validateMs),
  discovery_1000_tools_ms: Math.round(discoveryMs),
  visible,
  realistic,
  node: process.version,
};
process.stdout.write(`${JSON.stringify(figures)}\n`);
process.stdout.write(
  `policy decision: p50 ${figures.p50_us} µs, p99 ${figures.p99_us} µs, ${figures.decisions_per_s} decisions/s ` +
    `(${figures.policies} policies, ${figures.tools} tools); schema validation ${figures.validate_ms} ms; ` +
    `tools/list filtering for 1,000 tools ${figures.discovery_1000_tools_ms} ms\n`,
);
process.stdout.write(
  `realistic set (${realistic.policies} policies, ${realistic.tool} by a caller in ${realistic.groups.join(', ')}): ` +
    `p50 ${realistic.p50_us} µs, p99 ${realistic.p99_us} µs, ${realistic.decisions_per_s} decisions/s ` +
    `(${realistic.effects.allow} allow, ${realistic.effects.deny} deny)\n`,
);
const inside = realistic.inside;
process.stdout.write(
  `inside one full Cedar call (a caller's first calls; later ones go on residuals): ${inside.as_sent_us} µs as sent; ${inside.one_policy_us} µs with one permit instead of ` +
    `the slice; ${inside.one_policy_no_entities_us} µs without the 3 entities; ${inside.fixed_us} µs without context either\n`,
);

/**
 * The gateway benchmark's call under its policy set, the way the authorize
 * stage makes it: one Principal object reused across calls (a cached token),
 * session facts read before and recorded after each allowed call. After the
 * first two calls the engine decides on residual policies (in JS here).
 */
function measureRealistic() {
  const cfg = policySchema.parse({ tiers: { echo__echo: 'read' } });
  const catalog = new Catalog(cfg);
  catalog.updateTools('echo', [
    { name: 'echo__echo', inputSchema: { type: 'object', properties: { text: { type: 'string' } } } },
  ]);
  const set = parsePolicyTexts([{ file: 'realistic.cedar', text: realisticPolicySet() }]);
  const realisticEngine = new PolicyEngine(set, catalog);
  const problems = realisticEngine.validate();
  if (problems.length > 0) throw new Error(problems.join('\n'));
  const groups = ['team-7', 'engineering'];
  const now0 = Date.UTC(2026, 10, 24, 10);
  const claims = Object.freeze({
    iss: 'https://issuer.bench',
    aud: 'http://127.0.0.1/mcp',
    sub: 'bench-user',
    client_id: 'bench-agent',
    scope: 'echo:call tools:read',
    groups,
    reason: 'benchmark run',
    jti: 'bench-jti',
    iat: now0 / 1000,
    nbf: now0 / 1000,
    exp: now0 / 1000 + 7200,
  });
  const caller: Principal = Object.freeze({
    id: 'p_bench',
    authMethod: 'jwt',
    workload: 'bench-agent',
    user: 'bench-user',
    issuer: 'https://issuer.bench',
    scopes: ['echo:call', 'tools:read'],
    tokenId: 'bench-jti',
    expiresAt: now0 / 1000 + 7200,
    reason: 'benchmark run',
    claims,
  });
  const tool = catalog.tool('echo__echo');
  if (!tool) throw new Error('echo__echo is not in the catalog');
  const sessionFacts = new MemorySessionFacts();
  // About 5,000 calls a second on one key: what a loaded gateway's rate window holds.
  const nowOf = (i: number) => now0 + i / 5;
  const requestOf = (i: number, now: number, session: SessionSnapshot) =>
    echoCallRequest(caller, tool, i, now, session);
  const once = (i: number) => {
    const now = nowOf(i);
    const session = sessionFacts.snapshot(caller.id, tool.name, now);
    const d = realisticEngine.decide(requestOf(i, now, session));
    if (d.effect === 'allow')
      sessionFacts.record(caller.id, tool.name, now, { sensitive: false, tool: true });
    return d.effect;
  };
  for (let i = 0; i < 1000; i++) once(i);
  const figures = measure((i) => once(i + 1000));
  const sent = realisticEngine.cedarCallFor(requestOf(0, now0, sessionFacts.snapshot('x', tool.name, now0)));
  if (!sent) throw new Error('no Cedar call for the realistic request');
  return { policies: set.policies.length, tool: tool.name, groups, ...figures, inside: insideCedar(sent) };
}

/**
 * Where one full Cedar call's time goes (mean µs straight into cedar-wasm):
 * the call as the engine sends it before it has residuals, the same request against a single
 * `permit(principal, action, resource)`, that without entities, and without
 * context too (the fixed cost of a call).
 */
function insideCedar(call: CedarCall) {
  cedar.preparsePolicySet('bench-one-permit', {
    staticPolicies: { p0: 'permit(principal, action, resource);' },
  });
  const onePolicy = { ...call, preparsedPolicySetId: 'bench-one-permit' };
  const mean = (c: CedarCall) => {
    for (let i = 0; i < 2000; i++) cedar.statefulIsAuthorized(c);
    const start = performance.now();
    for (let i = 0; i < 10_000; i++) cedar.statefulIsAuthorized(c);
    return Math.round((performance.now() - start) / 10);
  };
  return {
    as_sent_us: mean(call),
    one_policy_us: mean(onePolicy),
    one_policy_no_entities_us: mean({ ...onePolicy, entities: [] }),
    fixed_us: mean({ ...onePolicy, entities: [], context: {} as never }),
  };
}
