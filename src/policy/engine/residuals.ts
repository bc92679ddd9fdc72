import { createHash, randomBytes } from 'node:crypto';
import { cedar, type EntityJson, type PolicyJson } from './cedar.ts';
import { type CompiledResiduals, compileResiduals } from './residual-eval.ts';

/**
 * Partial evaluation, computed once per slice, entities and context shape:
 * Cedar evaluates the slice with the principal, action and resource known and
 * every context attribute unknown. What is left is residual policies over the
 * context alone, which are pre-parsed; a later call with the same entities is
 * decided by Cedar on those residuals and its own context, without sending a
 * single entity (the entities are most of what a call costs at the wasm
 * boundary). Every call is still decided on its own: what is reused is the
 * evaluation of what cannot change between those calls, keyed by all of it.
 *
 * A residual is used only when it provably needs nothing but the context:
 * nothing errored, and no operator left in it that consults the entity store
 * (`in`, `has`, tags, an attribute of an entity literal), since without
 * entities those answer "no" where the whole evaluation might answer "yes".
 * Anything else is decided the usual way.
 */

/** Residual sets kept, across every engine (each holds a pre-parsed set in wasm memory, reused when evicted). */
export const MAX_RESIDUAL_SETS = 4096;

/**
 * Names of the unknowns this process puts in place of context attributes: a
 * policy may call `unknown("risk")` itself (the full call errors on it, so
 * denies), and that must stay an unknown, never become `context.risk`.
 */
const UNKNOWN_PREFIX = `portcullis-context-${randomBytes(12).toString('hex')}:`;

/** Operators whose answer depends on entity data a residual call does not carry. */
const ENTITY_OPERATORS = new Set(['in', 'has', 'hasTag', 'getTag']);

export interface ResidualSet {
  /** The pre-parsed set's id. */
  readonly id: string;
  /** The same residuals as a JS function, when they use only what it evaluates exactly. */
  readonly evaluate: CompiledResiduals | null;
}

interface Entry {
  seen: number;
  /** Undefined until built; null when the slice cannot be decided on residuals for these entities. */
  set: ResidualSet | null | undefined;
}

export interface ResidualRequest {
  readonly principal: { type: string; id: string };
  readonly action: { type: string; id: string };
  readonly resource: { type: string; id: string };
  /** The context as the slice is sent it (pruned to its read paths). */
  readonly context: Record<string, unknown>;
  /** The entities as the slice is sent them. */
  readonly entities: readonly EntityJson[];
}

class NotResidual extends Error {}

/** An LRU of residual sets; slots are pre-parsed set ids, overwritten when reused. */
export class ResidualSets {
  private readonly entries = new Map<string, Entry>();
  private readonly max: number;
  private readonly freeSlots: string[] = [];
  private nextSlot = 0;
  private readonly prefix: string;

  constructor(max = MAX_RESIDUAL_SETS, prefix = 'portcullis-residual') {
    this.max = max;
    this.prefix = prefix;
  }

  /**
   * The residual set for this key once it has been asked for more than
   * `after` times; undefined before, or when it cannot be used.
   */
  lookup(key: string, after: number, build: () => PolicySource | null): ResidualSet | undefined {
    let entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
      this.entries.set(key, entry);
    } else {
      entry = { seen: 0, set: undefined };
      this.entries.set(key, entry);
      this.evictBeyond(this.max);
    }
    if (entry.set !== undefined) return entry.set ?? undefined;
    entry.seen++;
    if (entry.seen <= after) return undefined;
    entry.set = this.parse(build());
    return entry.set ?? undefined;
  }

  private parse(policies: PolicySource | null): ResidualSet | null {
    if (!policies) return null;
    const id = this.freeSlots.pop() ?? `${this.prefix}-${this.nextSlot++}`;
    const parsed = cedar.preparsePolicySet(id, { staticPolicies: policies as never });
    if (parsed.type === 'failure') {
      this.freeSlots.push(id);
      return null;
    }
    return { id, evaluate: compileResiduals(policies) };
  }

  private evictBeyond(max: number): void {
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= max) return;
      this.entries.delete(key);
      if (entry.set) this.freeSlots.push(entry.set.id);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}

export type PolicySource = Record<string, PolicyJson>;

const sets = new ResidualSets();

/**
 * The residual set of a slice for one request shape, keyed by `scope` (the
 * engine and slice), the request's uids, the context's attribute names and
 * the digests of the entities as the slice sends them; built (from what `request` returns: the call as the
 * slice would be sent it, and the slice's policy texts) on the call after the
 * `after`-th.
 */
export function residualFor(
  scope: string,
  req: Pick<ResidualRequest, 'principal' | 'action' | 'resource'>,
  contextNames: readonly string[],
  entityKeys: readonly string[],
  after: number,
  request: () => ResidualRequest & { policies: Record<string, string> },
): ResidualSet | undefined {
  // The uids too: the entities need not include the principal, action or resource.
  const uids = [req.principal, req.action, req.resource].map((u) => [u.type, u.id]);
  const key = JSON.stringify([scope, uids, contextNames, ...entityKeys]);
  return sets.lookup(key, after, () => {
    const req = request();
    return buildResiduals(req, contextNames, req.policies);
  });
}

/** A digest of an entity's content (the engine caches it per deep-frozen entity and slice). */
export const entityDigest = (e: EntityJson): string =>
  createHash('sha256').update(JSON.stringify(e)).digest('base64url');

function buildResiduals(
  req: ResidualRequest,
  names: readonly string[],
  policies: Record<string, string>,
): PolicySource | null {
  const unknowns = new Set(names);
  let answer: ReturnType<typeof cedar.isAuthorizedPartial>;
  try {
    answer = cedar.isAuthorizedPartial({
      principal: req.principal,
      action: req.action,
      resource: req.resource,
      context: Object.fromEntries(
        names.map((n) => [n, { __extn: { fn: 'unknown', arg: `${UNKNOWN_PREFIX}${n}` } }]),
      ) as never,
      entities: req.entities as EntityJson[],
      policies: { staticPolicies: policies },
    });
  } catch {
    return null;
  }
  if (answer.type !== 'residuals' || answer.response.errored.length > 0) return null;
  const { satisfied, nontrivialResiduals, residuals } = answer.response;
  const out: [string, PolicyJson][] = [];
  try {
    // Policies neither satisfied nor residual are false whatever the context: they can never apply.
    for (const id of new Set([...satisfied, ...nontrivialResiduals])) {
      const policy = Object.hasOwn(residuals, id) ? residuals[id] : undefined;
      if (!policy) return null;
      out.push([id, overContext(policy, unknowns)]);
    }
  } catch (err) {
    if (err instanceof NotResidual) return null;
    throw err;
  }
  // fromEntries defines properties: an assignment to `__proto__` (a policy may be @id("__proto__")) would not.
  return Object.fromEntries(out);
}

/** A residual policy with each `unknown("name")` turned back into `context.name`; throws NotResidual. */
function overContext(policy: PolicyJson, unknowns: ReadonlySet<string>): PolicyJson {
  for (const part of [policy.principal, policy.action, policy.resource])
    if (part.op !== 'All') throw new NotResidual('scope left in a residual');
  return {
    effect: policy.effect,
    principal: { op: 'All' },
    action: { op: 'All' },
    resource: { op: 'All' },
    conditions: policy.conditions.map((c) => ({ kind: c.kind, body: expression(c.body, unknowns) })),
  } as PolicyJson;
}

function expression(node: unknown, unknowns: ReadonlySet<string>): never {
  if (Array.isArray(node)) return node.map((n) => expression(n, unknowns)) as never;
  if (node === null || typeof node !== 'object') return node as never;
  const entries = Object.entries(node);
  if (entries.length !== 1) throw new NotResidual('not an expression node');
  const [op, arg] = entries[0]!;
  // A literal is data, not operators: a record literal may well have an attribute called "in".
  if (op === 'Value') return node as never;
  if (op === 'Var') {
    if (arg !== 'context') throw new NotResidual(`variable ${String(arg)} left in a residual`);
    return node as never;
  }
  if (op === 'unknown') return contextAttribute(arg, unknowns) as never;
  if (ENTITY_OPERATORS.has(op)) throw new NotResidual(`${op} needs entity data`);
  if (op === 'is' && isObject(arg) && Object.hasOwn(arg, 'in'))
    throw new NotResidual('`is … in` needs entity data');
  if (op === '.' && isObject(arg) && !isContextPath(arg.left))
    throw new NotResidual('an attribute of anything but the context may need entity data');
  if (op === 'Record') {
    // Attribute names are data; only the values are expressions.
    const attrs = Object.entries(arg as Record<string, unknown>).map(([k, v]) => [
      k,
      expression(v, unknowns),
    ]);
    return { Record: Object.fromEntries(attrs) } as never;
  }
  return { [op]: expressionFields(arg, unknowns) } as never;
}

/** An operator's operands: an array of expressions, or named fields (some of which are data, e.g. `attr`). */
function expressionFields(arg: unknown, unknowns: ReadonlySet<string>): unknown {
  if (Array.isArray(arg)) return arg.map((a) => expression(a, unknowns));
  if (arg === null || typeof arg !== 'object') return arg;
  const out: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(arg)) {
    // `like`'s pattern is data: wildcards and literal text.
    const data = field === 'pattern' || value === null || typeof value !== 'object';
    out[field] = data ? value : expression(value, unknowns);
  }
  return out;
}

function contextAttribute(arg: unknown, unknowns: ReadonlySet<string>): unknown {
  const full = Array.isArray(arg) && arg.length === 1 ? (arg[0] as { Value?: unknown }).Value : undefined;
  const name =
    typeof full === 'string' && full.startsWith(UNKNOWN_PREFIX) ? full.slice(UNKNOWN_PREFIX.length) : '';
  if (!unknowns.has(name)) throw new NotResidual('an unknown this engine did not put there');
  return { '.': { left: { Var: 'context' }, attr: name } };
}

/** `context`, one of the context's unknowns, or a record literal, then any chain of attributes. */
function isContextPath(node: unknown): boolean {
  if (!isObject(node)) return false;
  if (node.Var === 'context' || Object.hasOwn(node, 'unknown') || Object.hasOwn(node, 'Record')) return true;
  const dot = node['.'];
  return isObject(dot) && isContextPath(dot.left);
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);
