import { PortcullisError } from '../../errors.ts';
import { ANONYMOUS, type Principal } from '../../identity/principal.ts';
import { isObject, type JsonObject } from '../../jsonrpc.ts';
import { type CallQuery, decideCall, resolveReason } from '../decide.ts';
import type { EngineDecision } from '../engine/engine.ts';
import { networkFacts } from '../facts/network.ts';
import { MAX_TOOLS_PER_PRINCIPAL } from '../facts/session-facts.ts';
import type { PolicyService } from '../service.ts';

/** One request as written in a policy test file or on the `policy explain` command line. */
export interface PolicyCase {
  name?: string;
  principal?: Partial<Principal>;
  tool: string;
  arguments?: JsonObject;
  reason?: string;
  session?: {
    sensitiveRead?: boolean;
    /** A result this caller received lately carried injected instructions. */
    tainted?: boolean;
    callsLastMinute?: number;
    toolsUsed?: string[];
    /** The history holds as many other callers as it may: this one is refused. */
    callerHistoryFull?: boolean;
  };
  /** ISO time; defaults to the service clock. */
  time?: string;
  address?: string;
  approval?: { granted?: boolean; breakGlass?: boolean };
  /** The request came signed by a key bound to the caller (`context.request.signed`). */
  signed?: boolean;
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

/** Decides a case on the gateway's own decision path (the validate and authorize stages). */
export function evaluateCase(svc: PolicyService, c: PolicyCase): CaseOutcome {
  let query: CallQuery;
  try {
    query = caseQuery(svc, c);
  } catch (err) {
    // The declared reason is refused before anything else, as the validate stage refuses it.
    if (err instanceof PortcullisError && err.code === 'ERR_INVALID_ARGUMENTS')
      return { kind: 'invalid-arguments', problem: err.message };
    throw err;
  }
  const out = decideCall(svc, query);
  if (out.kind !== 'decision') return out.kind === 'unknown-tool' ? { kind: 'unknown-tool' } : out;
  return { kind: 'decision', decision: out.decision, visible: out.visible };
}

/** The call a case describes, as the gateway would see it: a local caller is a stdio one. */
export function caseQuery(svc: PolicyService, c: PolicyCase): CallQuery {
  const principal = principalOf(c.principal);
  const toolsUsed = c.session?.toolsUsed ?? [];
  const session = {
    callsLastMinute: c.session?.callsLastMinute ?? 0,
    toolsUsed,
    sensitiveRead: c.session?.sensitiveRead ?? false,
    tainted: c.session?.tainted ?? false,
    toolsFull: toolsUsed.length >= MAX_TOOLS_PER_PRINCIPAL,
  };
  return {
    principal,
    method: 'tools/call',
    target: { kind: 'tool', name: c.tool },
    arguments: isObject(c.arguments) ? c.arguments : {},
    reason: resolveReason(c.reason, principal.reason, svc.cfg.limits.maxReasonLength).reason,
    network: networkFacts(c.address),
    history: { admits: () => !c.session?.callerHistoryFull, snapshot: () => session },
    now: c.time ? Date.parse(c.time) : svc.now(),
    approval: { granted: c.approval?.granted ?? false, breakGlass: c.approval?.breakGlass ?? false },
    signed: c.signed === true,
  };
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
