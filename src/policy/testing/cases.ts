import { ANONYMOUS, type Principal } from '../../identity/principal.ts';
import { isObject, type JsonObject } from '../../jsonrpc.ts';
import type { EngineDecision } from '../engine/engine.ts';
import type { CallFacts } from '../facts/request.ts';
import { NotRepresentable, toCedarValue } from '../model/cedar-types.ts';
import { checkAgainstSchema } from '../model/json-schema.ts';
import type { PolicyService } from '../service.ts';

/** One request as written in a policy test file or on the `policy explain` command line. */
export interface PolicyCase {
  name?: string;
  principal?: Partial<Principal>;
  tool: string;
  arguments?: JsonObject;
  reason?: string;
  session?: { sensitiveRead?: boolean; callsLastMinute?: number; toolsUsed?: string[] };
  /** ISO time; defaults to the service clock. */
  time?: string;
  address?: string;
  approval?: { granted?: boolean; breakGlass?: boolean };
  expect?: 'allow' | 'deny' | 'invalid-arguments' | 'unknown-tool';
  obligations?: string[];
  determiningPolicies?: string[];
}

export type CaseOutcome =
  | { kind: 'decision'; decision: EngineDecision; visible: boolean }
  | { kind: 'invalid-arguments'; problem: string }
  | { kind: 'unknown-tool' };

export function principalOf(p: Partial<Principal> | undefined): Principal {
  if (!p) return ANONYMOUS;
  return {
    id: p.id ?? p.user ?? 'anonymous',
    authMethod: p.authMethod ?? (p.id || p.user ? 'jwt' : 'none'),
    scopes: p.scopes ?? [],
    claims: p.claims ?? {},
    ...(p.user ? { user: p.user } : {}),
    ...(p.workload ? { workload: p.workload } : {}),
    ...(p.issuer ? { issuer: p.issuer } : {}),
    ...(p.reason ? { reason: p.reason } : {}),
  };
}

/** Decides a case exactly as the validate and authorize stages would. */
export function evaluateCase(svc: PolicyService, c: PolicyCase): CaseOutcome {
  const tool = svc.catalog.tool(c.tool);
  if (!tool) return { kind: 'unknown-tool' };
  const args = isObject(c.arguments) ? c.arguments : {};
  const problems = checkAgainstSchema(tool.inputSchema, args);
  if (problems.length > 0) return { kind: 'invalid-arguments', problem: problems.join('; ') };
  let input: Record<string, unknown>;
  try {
    input = toCedarValue(tool.input, args) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof NotRepresentable) return { kind: 'invalid-arguments', problem: err.message };
    throw err;
  }
  const principal = principalOf(c.principal);
  const now = c.time ? Date.parse(c.time) : svc.now();
  const facts: CallFacts = {
    ...svc.baseFacts(
      principal,
      'tools/call',
      { kind: 'tool', tool },
      {
        callsLastMinute: c.session?.callsLastMinute ?? 0,
        toolsUsed: c.session?.toolsUsed ?? [],
        sensitiveRead: c.session?.sensitiveRead ?? false,
        toolsFull: false,
      },
      now,
    ),
    input,
    reason: c.reason ?? principal.reason ?? '',
    network: { address: c.address ?? '127.0.0.1', transport: c.address ? 'http' : 'local' },
    approval: { granted: c.approval?.granted ?? false, breakGlass: c.approval?.breakGlass ?? false },
  };
  const decision = svc.decide(facts);
  return { kind: 'decision', decision, visible: decision.effect === 'allow' || svc.mayUse(facts) };
}

/** Why a case's outcome does not match what it expects; empty when it does. */
export function mismatches(c: PolicyCase, out: CaseOutcome): string[] {
  const got = out.kind === 'decision' ? out.decision.effect : out.kind;
  const problems: string[] = [];
  if (c.expect !== undefined && c.expect !== got) problems.push(`expected ${c.expect}, got ${got}`);
  if (out.kind !== 'decision') return problems;
  const same = (a: readonly string[], b: readonly string[]) => [...a].sort().join() === [...b].sort().join();
  if (c.obligations && !same(c.obligations, out.decision.obligations)) {
    problems.push(`expected obligations [${c.obligations}], got [${out.decision.obligations}]`);
  }
  if (c.determiningPolicies && !same(c.determiningPolicies, out.decision.determiningPolicies)) {
    problems.push(`expected policies [${c.determiningPolicies}], got [${out.decision.determiningPolicies}]`);
  }
  return problems;
}
