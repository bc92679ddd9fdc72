import { unknownTarget } from '../errors.ts';
import type { Principal } from '../identity/principal.ts';
import { isObject, type JsonObject } from '../jsonrpc.ts';
import type { DetectedTypes } from '../protect/service.ts';
import type { ReasonSource } from './call-input.ts';
import {
  callerHistoryFull,
  invalidArguments,
  obligationUnmet,
  policyDenied,
  policyEngineFailed,
  policyInvalid,
  sessionHistoryFull,
} from './denials.ts';
import type { EngineDecision } from './engine/engine.ts';
import type { NetworkFacts } from './facts/network.ts';
import type { CallFacts, SessionSnapshot, Target } from './facts/request.ts';
import { MAX_TOOLS_PER_PRINCIPAL } from './facts/session-facts.ts';
import { NotRepresentable, toCedarValue } from './model/cedar-types.ts';
import { checkAgainstSchema } from './model/json-schema.ts';
import { boundsProblem, NOT_UNICODE } from './model/limits.ts';
import { type PolicyService, targetName } from './service.ts';

/** What a call names: a tool by its exposed name (looked up in the catalog), or a target already resolved. */
export type CallTarget = { kind: 'tool'; name: string } | Exclude<Target, { kind: 'tool' }>;

/** What the caller has done lately, as the history holds it at the time of the call. */
export interface HistoryView {
  /** False when the history is full of other callers and cannot take this one. */
  admits(): boolean;
  snapshot(name: string): SessionSnapshot;
}

/** One call as policy sees it: the gateway builds it from a request, `policy test` from a case. */
export interface CallQuery {
  readonly principal: Principal;
  /** The MCP method (`tools/call`, `resources/read`, …). */
  readonly method: string;
  readonly target: CallTarget;
  readonly arguments: JsonObject;
  readonly reason: string;
  readonly network: NetworkFacts;
  readonly history: HistoryView;
  readonly now: number;
  readonly approval?: { granted: boolean; breakGlass: boolean };
  /** The caller signed the request and the signature held (`context.request.signed`); unsigned when left out. */
  readonly signed?: boolean;
  readonly callId?: string;
}

/** A call that passed validation: the snapshot policy decides on. */
export interface ValidatedCall {
  readonly target: Target;
  /** The arguments as Cedar values (tools), typed by the tool's inputSchema; `{}` otherwise. */
  readonly input: Record<string, unknown>;
  readonly args: JsonObject;
  /** What the detectors found in the arguments (`context.detected`). */
  readonly detected: DetectedTypes;
}

export type BuiltinDenial = 'caller-history-full' | 'session-history-full';

export type CallOutcome =
  | { kind: 'invalid-arguments'; problem: string }
  /** Refused, hidden with invalid arguments, or not in the catalog (`missing`: its definition may yet be fetched). */
  | { kind: 'unknown-tool'; name: string; missing: boolean }
  | {
      kind: 'decision';
      decision: EngineDecision;
      /** Whether the caller could use the target at all (a denied, invisible one answers as unknown). */
      visible: boolean;
      call: ValidatedCall;
      builtin?: BuiltinDenial;
    };

/**
 * The one decision path, for the gateway's validate and authorize stages and
 * for `portcullis policy test|explain`: bounded arguments that match the tool's
 * schema, then the caller's history, then Cedar. Reads the history, never
 * records in it (the authorize stage records an allowed call).
 */
export function decideCall(policy: PolicyService, q: CallQuery): CallOutcome {
  const checked = validateCall(policy, q);
  return 'kind' in checked ? checked : authorizeCall(policy, q, checked);
}

/** The validate half: bounds, the tool's definition and schema, the typed input. */
export function validateCall(policy: PolicyService, q: CallQuery): ValidatedCall | CallOutcome {
  const args = q.arguments;
  const bounds = boundsProblem(args, policy.cfg.limits);
  if (bounds) return { kind: 'invalid-arguments', problem: bounds };
  if (q.target.kind !== 'tool') return { target: q.target, input: {}, args, detected: policy.detect(args) };
  const { name } = q.target;
  if (policy.catalog.isRefused(name)) return { kind: 'unknown-tool', name, missing: false };
  const tool = policy.catalog.tool(name);
  if (!tool) return { kind: 'unknown-tool', name, missing: true };
  const target: Target = { kind: 'tool', tool };
  let problem = checkAgainstSchema(tool.inputSchema, args, policy.cfg.limits.maxDepth)[0];
  if (problem === undefined) {
    try {
      const input = toCedarValue(tool.input, args) as Record<string, unknown>;
      return { target, input, args, detected: policy.detect(args) };
    } catch (err) {
      if (!(err instanceof NotRepresentable)) throw err;
      problem = `a value cannot be represented for policy (${err.message})`;
    }
  }
  if (!policy.mayUse(factsOf(policy, q, target, {}))) return { kind: 'unknown-tool', name, missing: false };
  return { kind: 'invalid-arguments', problem };
}

/** The authorize half: the caller's history, then Cedar. */
export function authorizeCall(policy: PolicyService, q: CallQuery, call: ValidatedCall): CallOutcome {
  if (!q.history.admits()) return builtin(policy, call, 'caller-history-full');
  const name = targetName(call.target);
  const session = q.history.snapshot(name);
  if (call.target.kind === 'tool' && session.toolsFull && !session.toolsUsed.includes(name))
    return builtin(policy, call, 'session-history-full');
  const facts = { ...factsOf(policy, q, call.target, call.input, session), detected: call.detected };
  const decision = policy.decide(facts, q.callId);
  const visible = decision.effect === 'allow' || policy.mayUse(facts);
  return { kind: 'decision', decision, visible, call };
}

function factsOf(
  policy: PolicyService,
  q: CallQuery,
  target: Target,
  input: Record<string, unknown>,
  session: SessionSnapshot = q.history.snapshot(targetName(target)),
): CallFacts {
  return {
    ...policy.baseFacts(q.principal, q.method, target, session, q.now, q.network),
    input,
    reason: q.reason,
    ...(q.approval ? { approval: q.approval } : {}),
    request: { signed: q.signed === true },
  };
}

function builtin(policy: PolicyService, call: ValidatedCall, which: BuiltinDenial): CallOutcome {
  const decision: EngineDecision = {
    effect: 'deny',
    determiningPolicies: [`builtin:${which}`],
    policySetHash: policy.live.source.hash,
    obligations: [],
    errors: [],
  };
  return { kind: 'decision', decision, visible: true, call, builtin: which };
}

/** Obligations some later stage honours; an allow that carries any other is refused. */
export type Honoured = ReadonlySet<string>;

const NOTHING_HONOURED: Honoured = new Set();

/** The error the gateway answers an outcome with; undefined for an allow whose obligations are all `honoured`. */
export function refusalOf(
  policy: PolicyService,
  q: CallQuery,
  out: CallOutcome,
  honoured: Honoured = NOTHING_HONOURED,
): Error | undefined {
  if (out.kind === 'invalid-arguments') return invalidArguments(out.problem);
  if (out.kind === 'unknown-tool') return unknownTarget('tool', out.name);
  const { decision, call } = out;
  if (out.builtin === 'caller-history-full')
    return callerHistoryFull(q.principal.id, policy.cfg.session.maxPrincipals);
  if (out.builtin === 'session-history-full')
    return sessionHistoryFull(targetName(call.target), MAX_TOOLS_PER_PRINCIPAL);
  if (decision.failure === 'engine') return policyEngineFailed(decision);
  if (decision.failure === 'invalid') return policyInvalid(decision);
  if (decision.effect === 'deny') {
    if (!out.visible && call.target.kind !== 'server')
      return unknownTarget(call.target.kind, targetName(call.target));
    return policyDenied(decision);
  }
  if (decision.obligations.some((o) => !honoured.has(o))) return obligationUnmet(decision);
  return undefined;
}

/** `params._meta["io.portcullis/reason"]` for this call, else the token's reason, else "", and which it was. */
export function resolveReason(
  declared: unknown,
  tokenReason: string | undefined,
  max: number,
): { reason: string; reasonSource: ReasonSource } {
  if (declared !== undefined) {
    if (typeof declared !== 'string') throw invalidArguments('the declared reason must be a string');
    if (declared.length > max) throw invalidArguments('the declared reason is too long');
    if (!declared.isWellFormed()) throw invalidArguments(`the declared reason: ${NOT_UNICODE}`);
    if (declared.trim() !== '') return { reason: declared, reasonSource: 'declared' };
  }
  return tokenReason ? { reason: tokenReason, reasonSource: 'token' } : { reason: '', reasonSource: null };
}

/** The declared reason a request's `_meta` carries, if any. */
export const reasonMeta = (params: JsonObject, key: string): unknown =>
  isObject(params._meta) ? params._meta[key] : undefined;
