import { createHash } from 'node:crypto';
import type { Decision } from '../pipeline/context.ts';
import type { Catalog } from './catalog.ts';
import { type AuthorizationAnswer, cedar, type DetailedError } from './cedar.ts';
import { ACTION, generateSchema } from './cedar-schema.ts';
import { PolicyError } from './errors.ts';
import type { LoadedPolicy, PolicySource } from './policy-set.ts';
import type { CedarRequest } from './request.ts';

export type EngineErrorKind = 'engine' | 'invalid';

/** A decision, with why it failed when the engine could not decide (which always denies). */
export interface EngineDecision extends Decision {
  readonly failure?: EngineErrorKind;
}

const UNKNOWN = (name: string) => ({ __extn: { fn: 'unknown', arg: name } });
/** What a list request cannot know about a later call; risk is derived in part from the reason. */
const UNKNOWN_CONTEXT = {
  input: UNKNOWN('input'),
  reason: UNKNOWN('reason'),
  approval: UNKNOWN('approval'),
  risk: UNKNOWN('risk'),
};

/**
 * One policy set, pre-parsed once and sliced per action: a call evaluates only
 * the policies whose action scope can match it. Re-validated against the
 * schema generated from the catalog whenever the catalog changes; while it does
 * not validate, every decision is a deny.
 */
export class PolicyEngine {
  readonly source: PolicySource;
  private readonly catalog: Catalog;
  private readonly byId: Map<string, LoadedPolicy>;
  private readonly slices = new Map<string, { id: string; policies: LoadedPolicy[] } | null>();
  private validatedAt = -1;
  private problems: readonly string[] = [];

  constructor(source: PolicySource, catalog: Catalog) {
    this.source = source;
    this.catalog = catalog;
    this.byId = new Map(source.policies.map((p) => [p.id, p]));
  }

  /** Validation errors against the current catalog (strict mode); empty when the set is usable. */
  validate(): readonly string[] {
    if (this.validatedAt === this.catalog.version) return this.problems;
    this.validatedAt = this.catalog.version;
    this.problems = validateAgainst(this.source, this.catalog);
    return this.problems;
  }

  policy(id: string): LoadedPolicy | undefined {
    return this.byId.get(id);
  }

  decide(req: CedarRequest): EngineDecision {
    const problems = this.validate();
    if (problems.length > 0) return this.deny([], problems, 'invalid');
    const slice = this.slice(req.action.id);
    if (!slice) return this.deny([], []);
    let answer: AuthorizationAnswer;
    try {
      answer = cedar.statefulIsAuthorized({
        principal: req.principal,
        action: req.action,
        resource: req.resource,
        context: req.context as never,
        entities: req.entities,
        preparsedPolicySetId: slice.id,
      });
    } catch (err) {
      return this.deny([], [String(err)], 'engine');
    }
    if (answer.type === 'failure') return this.deny([], answer.errors.map(message), 'engine');
    const { decision, diagnostics } = answer.response;
    const errors = diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`);
    // Cedar skips a policy whose condition errors; a skipped forbid would fail open.
    if (errors.length > 0) return this.deny(diagnostics.reason, errors, 'engine');
    if (decision !== 'allow') return this.deny(diagnostics.reason, []);
    const obligations = new Set<string>();
    for (const id of diagnostics.reason)
      for (const o of this.byId.get(id)?.obligations ?? []) obligations.add(o);
    return {
      effect: 'allow',
      determiningPolicies: diagnostics.reason,
      policySetHash: this.source.hash,
      obligations: [...obligations].sort(),
      errors: [],
    };
  }

  /**
   * Whether the caller could use the target with some arguments, reason and
   * approval. Policies that do not read those are decided as usual (cheap);
   * only the rest go through partial evaluation (~10× the cost) with them
   * unknown. Hidden only when no permit can apply or a forbid surely does.
   */
  mayUse(req: CedarRequest): boolean {
    if (this.validate().length > 0) return false;
    const slice = this.slice(req.action.id);
    if (!slice) return false;
    let permitted = false;
    const known = this.slice(req.action.id, 'known');
    if (known) {
      const answer = this.run(known.id, req);
      if (!answer || answer.response.diagnostics.errors.length > 0) return false;
      // A deny that names policies names satisfied forbids.
      if (answer.response.decision === 'deny' && answer.response.diagnostics.reason.length > 0) return false;
      permitted = answer.response.decision === 'allow';
    }
    const unknown = slice.policies.filter((p) => p.readsCallContext);
    if (unknown.length === 0) return permitted;
    const forbids = new Set(unknown.filter((p) => p.effect === 'forbid').map((p) => p.id));
    try {
      const answer = cedar.isAuthorizedPartial({
        principal: req.principal,
        action: req.action,
        resource: req.resource,
        context: { ...req.context, ...UNKNOWN_CONTEXT } as never,
        entities: req.entities,
        policies: { staticPolicies: Object.fromEntries(unknown.map((p) => [p.id, p.text])) },
      });
      if (answer.type !== 'residuals' || answer.response.errored.length > 0) return false;
      const { satisfied, nontrivialResiduals } = answer.response;
      if (satisfied.some((id) => forbids.has(id))) return false;
      return permitted || [...satisfied, ...nontrivialResiduals].some((id) => !forbids.has(id));
    } catch {
      return false;
    }
  }

  private run(
    sliceId: string,
    req: CedarRequest,
  ): Extract<AuthorizationAnswer, { type: 'success' }> | undefined {
    try {
      const answer = cedar.statefulIsAuthorized({
        principal: req.principal,
        action: req.action,
        resource: req.resource,
        context: req.context as never,
        entities: req.entities,
        preparsedPolicySetId: sliceId,
      });
      return answer.type === 'success' ? answer : undefined;
    } catch {
      return undefined;
    }
  }

  private deny(
    determining: readonly string[],
    errors: readonly string[],
    failure?: EngineErrorKind,
  ): EngineDecision {
    return {
      effect: 'deny',
      determiningPolicies: [...determining],
      policySetHash: this.source.hash,
      obligations: [],
      errors: [...errors],
      ...(failure ? { failure } : {}),
    };
  }

  /** The pre-parsed subset of policies that can apply to one action; null when none can. */
  private slice(actionId: string, only?: 'known'): { id: string; policies: LoadedPolicy[] } | null {
    const cacheKey = only ? `${only}\0${actionId}` : actionId;
    const cached = this.slices.get(cacheKey);
    if (cached !== undefined) return cached;
    const scope = actionId.startsWith(`${ACTION.toolsCall}:`) ? [actionId, ACTION.toolsCall] : [actionId];
    const policies = this.source.policies.filter(
      (p) =>
        (p.actions.all || p.actions.ids.some((id) => scope.includes(id))) &&
        (only !== 'known' || !p.readsCallContext),
    );
    let slice: { id: string; policies: LoadedPolicy[] } | null = null;
    if (policies.length > 0) {
      const key = createHash('sha256')
        .update(`${this.source.hash}\0${policies.map((p) => p.id).join('\0')}`)
        .digest('base64url');
      const parsed = cedar.preparsePolicySet(key, {
        staticPolicies: Object.fromEntries(policies.map((p) => [p.id, p.text])),
      });
      if (parsed.type === 'failure')
        throw new PolicyError('ERR_POLICY_ENGINE', 'pre-parse failed', parsed.errors.map(message));
      slice = { id: key, policies };
    }
    this.slices.set(cacheKey, slice);
    return slice;
  }
}

/** Strict validation; a policy naming a tool no upstream lists (yet) is not an error, only dead. */
export function validateAgainst(source: PolicySource, catalog: Catalog): string[] {
  if (source.policies.length === 0) return [];
  const answer = cedar.validate({
    schema: generateSchema(catalog) as never,
    policies: { staticPolicies: Object.fromEntries(source.policies.map((p) => [p.id, p.text])) },
    validationSettings: { mode: 'strict' },
  });
  if (answer.type === 'failure') return answer.errors.map(message);
  const sources = new Map(source.policies.map((p) => [p.id, p.source]));
  return answer.validationErrors
    .filter((e) => !namesUnlistedTool(e.error, catalog))
    .map((e) => `${sources.get(e.policyId) ?? e.policyId}: ${message(e.error)}`);
}

function namesUnlistedTool(e: DetailedError, catalog: Catalog): boolean {
  const m = /unrecognized (?:action|entity) `(?:Action|Tool)::"(?:tools\/call:)?([^"]+)"`/.exec(e.message);
  return m !== null && catalog.tool(m[1]!) === undefined;
}

const message = (e: DetailedError): string => (e.help ? `${e.message} (${e.help})` : e.message);
