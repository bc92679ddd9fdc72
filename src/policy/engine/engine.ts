import { createHash } from 'node:crypto';
import { isDeepFrozen } from '../../freeze.ts';
import type { Decision } from '../decision.ts';
import { PolicyError } from '../errors.ts';
import type { CedarRequest } from '../facts/request.ts';
import type { Catalog, ToolDef } from '../model/catalog.ts';
import { ACTION, generateSchema, toolAction } from '../model/cedar-schema.ts';
import { type AuthorizationAnswer, cedar, type DetailedError, type EntityJson } from './cedar.ts';
import type { LoadedPolicy, PolicySource } from './policy-set.ts';
import { type ContextReads, mergeNames, mergeReads, pruneContext } from './reads.ts';
import { BAIL } from './residual-eval.ts';
import { entityDigest, residualFor } from './residuals.ts';
import {
  EntityGraph,
  entityKey,
  entityRef,
  mayMatch,
  namedEntities,
  type ScopeView,
  scopeView,
} from './scope.ts';

export type EngineErrorKind = 'engine' | 'invalid';

/** A decision, with why it failed when the engine could not decide (which always denies). */
export interface EngineDecision extends Decision {
  readonly failure?: EngineErrorKind;
}

const UNKNOWN = (name: string) => ({ __extn: { fn: 'unknown', arg: name } });
/** What a list request cannot know about a later call; risk is derived in part from the reason. */
const UNKNOWN_CONTEXT = {
  input: UNKNOWN('input'),
  detected: UNKNOWN('detected'),
  reason: UNKNOWN('reason'),
  approval: UNKNOWN('approval'),
  request: UNKNOWN('request'),
  risk: UNKNOWN('risk'),
};

/** A pre-parsed subset of the policies, and what of a request they can read. */
interface Slice {
  readonly id: string;
  readonly policies: readonly LoadedPolicy[];
  readonly readsTags: boolean;
  readonly contextReads: ContextReads;
  readonly attributes: ReadonlySet<string> | true;
  readonly memberships: ReadonlySet<string> | true;
  /** The entity uids its policies write out (see `LoadedPolicy.namedUids`). */
  readonly namedUids: ReadonlySet<string>;
}

/** Listing answers kept per engine (see `mayUse`); past it the oldest go. */
export const MAX_LISTING_ANSWERS = 65_536;

/**
 * Request-scoped slices kept at most (each may hold a set pre-parsed in wasm
 * memory, which never shrinks); past it a request uses its action's slice.
 */
export const MAX_REQUEST_SLICES = 1024;

/** Calls with the same slice and entities decided in full before their residuals are computed (~1 ms once). */
export const RESIDUALS_AFTER = 2;

let engineCount = 0;

/** Content-named sets already in wasm (per thread, as cedar-wasm keeps them): every engine may use them. */
const parsedInProcess = new Set<string>();

/**
 * One policy set, pre-parsed once and sliced per request: a call evaluates
 * only the policies whose action, principal and resource scopes can match it,
 * and Cedar is sent only what those can read. Re-validated against the schema
 * generated from the catalog whenever the catalog changes; while it does not
 * validate, every decision is a deny.
 */
export class PolicyEngine {
  readonly source: PolicySource;
  private readonly catalog: Catalog;
  private readonly byId: Map<string, LoadedPolicy>;
  /** Every entity a principal or resource scope names: what a request's scope views are projected on. */
  private readonly named: ReadonlySet<string>;
  private readonly actionSlices = new Map<string, Slice | null>();
  private readonly requestSlices = new Map<string, Slice | null>();
  /** By pre-parsed set id (a hash of its policies' ids and texts). */
  private readonly parsed = new Map<string, Slice>();
  private readonly maxRequestSlices: number;
  private readonly residualsAfter: number | 'never';
  /** Distinguishes this engine's residuals from those of an engine over another set or catalog. */
  private readonly serial = ++engineCount;
  private validatedAt = -1;
  /** `mayUse` answers by everything they depend on (`listingKey`); emptied when the catalog changes. */
  private readonly listings = new Map<string, boolean>();
  private readonly shareListings: boolean;
  private reads: ContextReads | undefined;
  private problems: readonly string[] = [];
  /** Tool input types (a digest of their JSON) Cedar accepted in a schema: not parsed again at the next catalog change. */
  private readonly parsedTypes = new Set<string>();

  constructor(
    source: PolicySource,
    catalog: Catalog,
    opts: { maxRequestSlices?: number; residualsAfter?: number | 'never'; shareListings?: boolean } = {},
  ) {
    this.shareListings = opts.shareListings ?? true;
    this.source = source;
    this.catalog = catalog;
    this.maxRequestSlices = opts.maxRequestSlices ?? MAX_REQUEST_SLICES;
    this.residualsAfter = opts.residualsAfter ?? RESIDUALS_AFTER;
    this.byId = new Map(source.policies.map((p) => [p.id, p]));
    this.named = new Set(
      source.policies.flatMap((p) =>
        [...namedEntities(p.principal), ...namedEntities(p.resource)].map(entityKey),
      ),
    );
  }

  /** How many request-scoped slices are cached (bounded by `maxRequestSlices`). */
  get cachedSlices(): number {
    return this.requestSlices.size;
  }

  /** Validation errors against the current catalog (strict mode); empty when the set is usable. */
  validate(): readonly string[] {
    if (this.validatedAt === this.catalog.version) return this.problems;
    const version = this.catalog.version;
    this.listings.clear();
    try {
      this.problems = validateAgainst(this.source, this.catalog, this.parsedTypes);
    } catch (err) {
      // A validator that cannot run proves nothing: the set stays unusable for this catalog.
      this.problems = [`validation failed: ${String(err)}`];
    }
    this.validatedAt = version;
    return this.problems;
  }

  /** Whether some policy reads `context[attr]` (or the whole context). */
  readsContext(attr: string): boolean {
    this.reads ??= mergeReads(this.source.policies.map((p) => p.contextReads));
    return this.reads === true || this.reads.has(attr);
  }

  policy(id: string): LoadedPolicy | undefined {
    return this.byId.get(id);
  }

  decide(req: CedarRequest): EngineDecision {
    const problems = this.validate();
    if (problems.length > 0) return this.deny([], problems, 'invalid');
    const graph = EntityGraph.of(req.entities);
    let answer: AuthorizationAnswer;
    try {
      const slice = this.slice(req, graph);
      if (!slice) return this.deny([], []);
      const { call, quick } = this.plan(slice, req, graph);
      answer = quick ?? cedar.statefulIsAuthorized(call);
    } catch (err) {
      return this.deny([], [String(err)], 'engine');
    }
    if (answer.type === 'failure') return this.deny([], answer.errors.map(message), 'engine');
    const { decision, diagnostics } = answer.response;
    const errors = diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`);
    // Cedar skips a policy whose condition errors; a skipped forbid would fail open.
    if (errors.length > 0) return this.deny(diagnostics.reason, errors, 'engine');
    if (decision !== 'allow') return this.deny([...diagnostics.reason].sort(), []);
    const obligations = new Set<string>();
    let approvers = 0;
    for (const id of diagnostics.reason) {
      const policy = this.byId.get(id);
      for (const o of policy?.obligations ?? []) obligations.add(o);
      if (policy?.obligations.includes('approval')) approvers = Math.max(approvers, policy.approvers);
    }
    return {
      effect: 'allow',
      // Sorted: Cedar reports a set, in an order that differs between equivalent calls.
      determiningPolicies: [...diagnostics.reason].sort(),
      policySetHash: this.source.hash,
      obligations: [...obligations].sort(),
      ...(approvers > 0 ? { approvers } : {}),
      errors: [],
    };
  }

  /** What Cedar is sent to decide this request: the slice and the request trimmed to it (null: no policy applies). */
  cedarCallFor(req: CedarRequest): ReturnType<typeof cedarCall> | null {
    const graph = EntityGraph.of(req.entities);
    const slice = this.slice(req, graph);
    return slice && cedarCall(slice, req, graph);
  }

  /**
   * What Cedar is sent to decide this request, as `decide` sends it (and
   * counted as one of its calls). A residual set id in it is good only until
   * the next decision: an evicted slot is reused.
   */
  decisionCallFor(req: CedarRequest): ReturnType<typeof cedarCall> | null {
    const graph = EntityGraph.of(req.entities);
    const slice = this.slice(req, graph);
    return slice && this.plan(slice, req, graph).call;
  }

  /**
   * Whether the caller could use the target with some arguments, reason and
   * approval. Policies that do not read those are decided as usual (cheap);
   * only the rest go through partial evaluation (~10× the cost) with them
   * unknown. Hidden only when no permit can apply or a forbid surely does.
   *
   * A list is not a call: the answer is kept, keyed by all it depends on
   * (`listingKey`), so the next list by a caller the policies see the same
   * way reuses it, and so do the other tools of one list that the policies
   * cannot tell apart. Calls are always decided on their own (`decide`).
   */
  mayUse(req: CedarRequest): boolean {
    if (this.validate().length > 0) return false;
    // The same frozen entities and context as an answered request: the same request, the same answer.
    const same = this.shareListings ? this.sameRequestKey(req) : undefined;
    const again = same === undefined ? undefined : this.listings.get(same);
    if (again !== undefined) return again;
    const answer = this.useOf(req);
    if (same !== undefined && answer !== undefined) this.keep(same, answer);
    return answer ?? false;
  }

  /** `mayUse` through the slices; undefined when the engine failed (not an answer to keep). */
  private useOf(req: CedarRequest): boolean | undefined {
    const graph = EntityGraph.of(req.entities);
    let slice: Slice | null;
    let known: Slice | null;
    try {
      slice = this.slice(req, graph);
      known = this.slice(req, graph, 'known');
    } catch {
      return undefined;
    }
    if (!slice) return false;
    if (!this.shareListings) return this.evaluateUse(slice, known, req, graph);
    const key = listingKey(slice, known, req, graph);
    const kept = this.listings.get(key);
    if (kept !== undefined) return kept;
    const answer = this.evaluateUse(slice, known, req, graph);
    // An engine failure is not an answer to keep: it is tried again next time.
    if (answer !== undefined) this.keep(key, answer);
    return answer;
  }

  private keep(key: string, answer: boolean): void {
    if (this.listings.size >= MAX_LISTING_ANSWERS) this.listings.delete(this.listings.keys().next().value!);
    this.listings.set(key, answer);
  }

  /**
   * A key naming this very request, when its entities are deep-frozen (and so
   * cannot have changed since they were given a number): their numbers, the
   * uids, and the context as far as any policy reads it. Undefined otherwise.
   */
  private sameRequestKey(req: CedarRequest): string | undefined {
    const ids: number[] = [];
    for (const e of req.entities) {
      if (!isDeepFrozen(e)) return undefined;
      let id = objectIds.get(e);
      if (id === undefined) {
        id = ++objectCount;
        objectIds.set(e, id);
      }
      ids.push(id);
    }
    this.reads ??= mergeReads(this.source.policies.map((p) => p.contextReads));
    const { principal, action, resource } = req;
    return JSON.stringify([
      '=',
      ids,
      principal.type,
      principal.id,
      action.id,
      resource.type,
      resource.id,
      pruneContext(req.context, this.reads),
    ]);
  }

  /** `mayUse` evaluated by Cedar; undefined when the engine failed (which hides the target). */
  private evaluateUse(
    slice: Slice,
    known: Slice | null,
    req: CedarRequest,
    graph: EntityGraph | undefined,
  ): boolean | undefined {
    let permitted = false;
    if (known) {
      const answer = this.run(known, req, graph);
      if (!answer || answer.response.diagnostics.errors.length > 0) return undefined;
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
      if (answer.type !== 'residuals' || answer.response.errored.length > 0) return undefined;
      const { satisfied, nontrivialResiduals } = answer.response;
      if (satisfied.some((id) => forbids.has(id))) return false;
      return permitted || [...satisfied, ...nontrivialResiduals].some((id) => !forbids.has(id));
    } catch {
      return undefined;
    }
  }

  /**
   * How a decision is made: the Cedar call, on the slice's residuals for
   * these entities when there are some; and `quick`, Cedar's answer as the
   * residuals' JS form gives it, when it can.
   */
  private plan(
    slice: Slice,
    req: CedarRequest,
    graph: EntityGraph | undefined,
  ): { call: ReturnType<typeof cedarCall>; quick?: AuthorizationAnswer } {
    const context = pruneContext(req.context, slice.contextReads) as Record<string, unknown>;
    if (this.residualsAfter === 'never') return { call: cedarCall(slice, req, graph, context) };
    const residuals = residualFor(
      `${this.serial}\0${slice.id}`,
      req,
      Object.keys(context),
      req.entities.map((e) => digestAsSent(e, slice, graph)),
      this.residualsAfter,
      () => ({
        ...cedarCall(slice, req, graph, context),
        policies: Object.fromEntries(slice.policies.map((p) => [p.id, p.text])),
      }),
    );
    if (!residuals) return { call: cedarCall(slice, req, graph, context) };
    const { principal, action, resource } = req;
    const call = {
      principal,
      action,
      resource,
      context: context as never,
      entities: [],
      preparsedPolicySetId: residuals.id,
    };
    const quick = residuals.evaluate?.(context);
    if (quick === undefined || quick === BAIL) return { call };
    const diagnostics = { reason: [...quick.reason], errors: [] };
    return {
      call,
      quick: { type: 'success', response: { decision: quick.decision, diagnostics }, warnings: [] },
    };
  }

  private run(
    slice: Slice,
    req: CedarRequest,
    graph: EntityGraph | undefined,
  ): Extract<AuthorizationAnswer, { type: 'success' }> | undefined {
    try {
      const answer = cedar.statefulIsAuthorized(cedarCall(slice, req, graph));
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

  /**
   * The pre-parsed subset of policies whose scopes can match this request;
   * null when none can. `known`: only those that read nothing a list request
   * cannot know.
   */
  private slice(req: CedarRequest, graph: EntityGraph | undefined, only?: 'known'): Slice | null {
    const byAction = this.actionSlice(req.action.id, only);
    if (!byAction || !graph) return byAction;
    const views = requestViews(req, graph, this.named);
    const key = JSON.stringify([only ?? '', req.action.id, views.principal, views.resource]);
    const cached = this.requestSlices.get(key);
    if (cached !== undefined) return cached;
    if (this.requestSlices.size >= this.maxRequestSlices) return byAction;
    const slice = this.preparsed(
      byAction.policies.filter(
        (p) => mayMatch(p.principal, views.principal) && mayMatch(p.resource, views.resource),
      ),
    );
    this.requestSlices.set(key, slice);
    return slice;
  }

  /** The policies whose action scope can match one action, whoever calls what. */
  private actionSlice(actionId: string, only?: 'known'): Slice | null {
    const cacheKey = only ? `${only}\0${actionId}` : actionId;
    const cached = this.actionSlices.get(cacheKey);
    if (cached !== undefined) return cached;
    const scope = actionId.startsWith(`${ACTION.toolsCall}:`) ? [actionId, ACTION.toolsCall] : [actionId];
    const slice = this.preparsed(
      this.source.policies.filter(
        (p) =>
          (p.actions.all || p.actions.ids.some((id) => scope.includes(id))) &&
          (only !== 'known' || !p.readsCallContext),
      ),
    );
    this.actionSlices.set(cacheKey, slice);
    return slice;
  }

  private preparsed(policies: readonly LoadedPolicy[]): Slice | null {
    if (policies.length === 0) return null;
    // Named by content (JSON, not a join: an id may hold any character, NUL included), so a
    // reload finds the slices it did not change already parsed, and wasm memory does not grow per reload.
    const id = createHash('sha256')
      .update(JSON.stringify(policies.map((p) => [p.id, p.text])))
      .digest('base64url');
    const known = this.parsed.get(id);
    if (known) return known;
    if (!parsedInProcess.has(id)) {
      const parsed = cedar.preparsePolicySet(id, {
        staticPolicies: Object.fromEntries(policies.map((p) => [p.id, p.text])),
      });
      if (parsed.type === 'failure')
        throw new PolicyError('ERR_POLICY_ENGINE', 'pre-parse failed', parsed.errors.map(message));
      parsedInProcess.add(id);
    }
    const slice: Slice = {
      id,
      policies,
      readsTags: policies.some((p) => p.readsTags),
      contextReads: mergeReads(policies.map((p) => p.contextReads)),
      attributes: mergeNames(policies.map((p) => p.attributes)),
      memberships: mergeNames(policies.map((p) => p.memberships)),
      namedUids: new Set(policies.flatMap((p) => [...p.namedUids])),
    };
    this.parsed.set(id, slice);
    return slice;
  }
}

/** The principal's and the resource's scope views, from their ancestors among the request's entities. */
function requestViews(
  req: CedarRequest,
  graph: EntityGraph,
  named: ReadonlySet<string>,
): { principal: ScopeView; resource: ScopeView } {
  return {
    principal: scopeView(req.principal, graph.ancestors(req.principal), named),
    resource: scopeView(req.resource, graph.ancestors(req.resource), named),
  };
}

/**
 * The authorization call for one slice, with only what its policies can read:
 * the context along their read paths, the entity attributes they name, tags
 * only if one of them reads tags, and parents only if one of them can test
 * membership in them. Uids are always sent.
 */
function cedarCall(
  slice: Slice,
  req: CedarRequest,
  graph: EntityGraph | undefined,
  context = pruneContext(req.context, slice.contextReads),
) {
  // Parents are trimmed only where each entity's parents are all its ancestors.
  const memberships = graph?.flat ? slice.memberships : true;
  return {
    principal: req.principal,
    action: req.action,
    resource: req.resource,
    context: context as never,
    entities: req.entities.map((e) => readableOf(e, slice, memberships)),
    preparsedPolicySetId: slice.id,
  };
}

/**
 * What a `mayUse` answer depends on: the slices (the policies evaluated), the
 * request's uids, the context their policies can read, and the entities as
 * they are sent them. The uid of a tool (and of its action) is left out when
 * no policy of the slice writes it out: Cedar has no other way to tell two
 * entities apart than by comparing them with a written-out uid (no attribute
 * or parent of the gateway's entities holds a tool's uid), so two tools with
 * the same attributes and parents then get the same answer, and one
 * evaluation answers for every such tool of a list, however many other tools
 * the policies name.
 */
function listingKey(
  slice: Slice,
  known: Slice | null,
  req: CedarRequest,
  graph: EntityGraph | undefined,
): string {
  const toolAction =
    req.action.id.startsWith(`${ACTION.toolsCall}:`) && !slice.namedUids.has(entityKey(req.action));
  const anyResource = !slice.namedUids.has(entityKey(req.resource));
  const context = pruneContext(req.context, slice.contextReads);
  const entities = req.entities.map((e) => {
    const anonymous =
      (toolAction && sameUid(e.uid, req.action)) || (anyResource && sameUid(e.uid, req.resource));
    return anonymous ? `*${digestAsSent(e, slice, graph, false)}` : digestAsSent(e, slice, graph);
  });
  return JSON.stringify([
    slice.id,
    known?.id ?? '',
    req.principal.type,
    req.principal.id,
    toolAction ? '*' : req.action.id,
    req.resource.type,
    anyResource ? '*' : req.resource.id,
    context,
    entities,
  ]);
}

const sameUid = (uid: EntityJson['uid'], ref: { type: string; id: string }): boolean => {
  const r = entityRef(uid);
  return r !== undefined && r.type === ref.type && r.id === ref.id;
};

/** A number per deep-frozen entity, for `sameRequestKey`. */
const objectIds = new WeakMap<EntityJson, number>();
let objectCount = 0;

/** Per deep-frozen entity: digests of it as each slice is sent it (by slice id and graph shape). */
const sentDigests = new WeakMap<EntityJson, Map<string, string>>();

/**
 * A digest of the entity as Cedar is sent it for this slice: residuals depend
 * on that alone, so two tokens of one caller that differ only in what the
 * slice does not read (a `jti`, an `iat`) share them.
 */
function digestAsSent(e: EntityJson, slice: Slice, graph: EntityGraph | undefined, withUid = true): string {
  const memberships = graph?.flat ? slice.memberships : true;
  const sent = (): EntityJson => {
    const readable = readableOf(e, slice, memberships);
    return withUid ? readable : { ...readable, uid: { type: '', id: '' } };
  };
  if (!isDeepFrozen(e)) return entityDigest(sent());
  const key = `${slice.id}\0${memberships === true}\0${withUid}`;
  let digests = sentDigests.get(e);
  if (!digests) {
    digests = new Map();
    sentDigests.set(e, digests);
  }
  let digest = digests.get(key);
  if (digest === undefined) {
    digest = entityDigest(sent());
    digests.set(key, digest);
  }
  return digest;
}

function readableOf(e: EntityJson, slice: Slice, memberships: ReadonlySet<string> | true): EntityJson {
  const attrs = slice.attributes === true ? e.attrs : pick(e.attrs, slice.attributes);
  const parents = memberships === true ? e.parents : e.parents.filter((p) => memberships.has(keyOf(p)));
  if (slice.readsTags && e.tags !== undefined) return { uid: e.uid, attrs, parents, tags: e.tags };
  return { uid: e.uid, attrs, parents };
}

/** Only for parents of a graph that understood every entity (without one, `memberships` is `true`). */
const keyOf = (uid: EntityJson['uid']): string => entityKey(entityRef(uid)!);

function pick<T>(record: Record<string, T>, names: ReadonlySet<string>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const name of Object.keys(record)) if (names.has(name)) out[name] = record[name]!;
  return out;
}

/**
 * Strict validation; a policy naming a tool no upstream lists (yet) is not an error, only dead.
 *
 * Each tool's action differs from another's only in `context.input`'s type, so a policy
 * that does not read `context.input` (or whose action scope names only some tools) types
 * the same under every tool's action: it is validated against one tool's action and those
 * of the tools the set names, not all of them (1,001 tools and 100 policies: a 5-8 s
 * validation, which stalled the first list). The policies that read `context.input` for
 * every tool are validated against every tool's action. Every input type must still be
 * one Cedar accepts: those not in `parsedTypes` (types already accepted, kept by the
 * caller across catalog changes) are parsed, so a tool whose type Cedar refuses still fails.
 */
export function validateAgainst(
  source: PolicySource,
  catalog: Catalog,
  parsedTypes: Set<string> = new Set(),
): string[] {
  if (source.policies.length === 0) return [];
  const tools = catalog.allTools();
  const broad = source.policies.filter((p) => readsInput(p.contextReads) && anyTool(p.actions));
  const rest = source.policies.filter((p) => !broad.includes(p));
  const named = new Set(source.policies.flatMap((p) => [...p.namedUids]));
  const few = tools.filter(
    (t, i) => i === 0 || named.has(entityKey({ type: 'Action', id: toolAction(t.name) })),
  );
  const full = broad.length > 0 || few.length === tools.length ? generateSchema(tools) : undefined;
  if (!full) {
    const refused = newTypesRefused(tools, parsedTypes);
    if (refused) return refused;
  }
  const problems = [
    ...validationProblems(broad, full, catalog),
    ...validationProblems(rest, few.length === tools.length ? full : generateSchema(few), catalog),
  ];
  // In the set's order, as one validation of the whole set would list them.
  const order = new Map(source.policies.map((p, i) => [p.id, i]));
  return problems.sort((a, b) => (order.get(a.id) ?? -1) - (order.get(b.id) ?? -1)).map((p) => p.text);
}

const MAX_PARSED_TYPES = 16_384;

const anyTool = (actions: LoadedPolicy['actions']): boolean =>
  actions.all || actions.ids.includes(ACTION.toolsCall);

/** Parses a schema of one tool per input type not parsed before; its errors when Cedar refuses one. */
function newTypesRefused(tools: readonly ToolDef[], parsedTypes: Set<string>): string[] | undefined {
  const fresh = new Map<string, ToolDef>();
  for (const t of tools) {
    // A digest, not the text: an upstream's huge schemas cost a few bytes each here.
    const key = createHash('sha256').update(JSON.stringify(t.input)).digest('base64');
    if (!parsedTypes.has(key) && !fresh.has(key)) fresh.set(key, t);
  }
  if (fresh.size === 0) return undefined;
  const parsed = cedar.checkParseSchema(generateSchema([...fresh.values()]) as never);
  if (parsed.type === 'failure') return parsed.errors.map(message);
  // Bounded: past it the set starts again, which costs a parse, never a check skipped.
  if (parsedTypes.size + fresh.size > MAX_PARSED_TYPES) parsedTypes.clear();
  for (const key of fresh.keys()) parsedTypes.add(key);
  return undefined;
}

const readsInput = (reads: ContextReads): boolean => reads === true || reads.has('input');

function validationProblems(
  policies: readonly LoadedPolicy[],
  schema: Record<string, unknown> | undefined,
  catalog: Catalog,
): { id: string; text: string }[] {
  if (policies.length === 0 || !schema) return [];
  const answer = cedar.validate({
    schema: schema as never,
    policies: { staticPolicies: Object.fromEntries(policies.map((p) => [p.id, p.text])) },
    validationSettings: { mode: 'strict' },
  });
  if (answer.type === 'failure') return answer.errors.map((e) => ({ id: '', text: message(e) }));
  const sources = new Map(policies.map((p) => [p.id, p.source]));
  return answer.validationErrors
    .filter((e) => !namesUnlistedTool(e.error, catalog))
    .map((e) => ({ id: e.policyId, text: `${sources.get(e.policyId) ?? e.policyId}: ${message(e.error)}` }));
}

function namesUnlistedTool(e: DetailedError, catalog: Catalog): boolean {
  const m = /unrecognized (?:action|entity) `(?:Action|Tool)::"(?:tools\/call:)?([^"]+)"`/.exec(e.message);
  return m !== null && catalog.tool(m[1]!) === undefined;
}

const message = (e: DetailedError): string => (e.help ? `${e.message} (${e.help})` : e.message);
