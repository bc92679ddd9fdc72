#!/usr/bin/env node
/**
 * Policy sets at scale, for `npm run bench -- --scale`: the gateway
 * benchmark's set of policies (`realisticPolicySet(n)` in
 * bench/gateway-configs.ts) at each size asked for, and its call, `echo__echo`
 * by a caller in two groups, decided the way the authorize stage decides it
 * (session facts snapshot → Cedar request → decision → record).
 *
 *   node bench/scale-policies.ts [--sizes 10,100,10000] [--decisions 5000]
 *
 * Prints one JSON line per size: the policies, the load time, wall and CPU
 * (parse, and validation against the generated schema), the first decision (pre-parsing
 * its slice) and p50/p99 and mean CPU µs of a decision after 1,000 warm-up calls.
 */
import { parseArgs } from 'node:util';
import type { Principal } from '../src/identity/principal.ts';
import { policySchema } from '../src/policy/config.ts';
import { PolicyEngine } from '../src/policy/engine/engine.ts';
import { parsePolicyTexts } from '../src/policy/engine/policy-set.ts';
import type { SessionSnapshot } from '../src/policy/facts/request.ts';
import { MemorySessionFacts } from '../src/policy/facts/session-facts.ts';
import { Catalog } from '../src/policy/model/catalog.ts';
import { realisticPolicySet } from './gateway-configs.ts';
import { echoCallRequest } from './lib/echo-call.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10,100,10000' },
    decisions: { type: 'string', default: '5000' },
  },
});
const N = Number(values.decisions);
const now0 = Date.UTC(2026, 10, 24, 10);

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
  claims: Object.freeze({ sub: 'bench-user', groups: ['team-7', 'engineering'] }),
});

function measureSize(size: number) {
  const catalog = new Catalog(policySchema.parse({ tiers: { echo__echo: 'read' } }));
  catalog.updateTools('echo', [
    { name: 'echo__echo', inputSchema: { type: 'object', properties: { text: { type: 'string' } } } },
  ]);
  const loadCpu0 = process.cpuUsage();
  let t0 = performance.now();
  const set = parsePolicyTexts([{ file: 'scale.cedar', text: realisticPolicySet(size) }]);
  const engine = new PolicyEngine(set, catalog);
  const problems = engine.validate();
  const loadMs = performance.now() - t0;
  const loadCpu = process.cpuUsage(loadCpu0);
  if (problems.length > 0) throw new Error(problems.join('\n'));
  const tool = catalog.tool('echo__echo')!;
  const facts = new MemorySessionFacts();
  const once = (i: number) => {
    const now = now0 + i / 5;
    const session: SessionSnapshot = facts.snapshot(caller.id, tool.name, now);
    const d = engine.decide(echoCallRequest(caller, tool, i, now, session));
    if (d.effect !== 'allow') throw new Error(`the bench call was denied under ${size} policies`);
    facts.record(caller.id, tool.name, now, { sensitive: false, tool: true });
  };
  t0 = performance.now();
  once(0);
  const firstMs = performance.now() - t0;
  for (let i = 1; i < 1000; i++) once(i);
  const samples = new Float64Array(N);
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    const s = performance.now();
    once(1000 + i);
    samples[i] = performance.now() - s;
  }
  const cpu = process.cpuUsage(cpu0);
  samples.sort();
  const pct = (p: number) => Math.round(samples[Math.min(N - 1, Math.floor((p / 100) * N))]! * 1000);
  return {
    policies: set.policies.length,
    load_ms: Math.round(loadMs),
    load_cpu_ms: Math.round((loadCpu.user + loadCpu.system) / 1000),
    first_decision_ms: Math.round(firstMs * 10) / 10,
    p50_us: pct(50),
    p99_us: pct(99),
    cpu_us_per_decision: Math.round((cpu.user + cpu.system) / N),
  };
}

for (const size of values.sizes.split(',').map(Number)) {
  process.stdout.write(`${JSON.stringify(measureSize(size))}\n`);
}
