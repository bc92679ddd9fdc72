import { isObject } from '../../jsonrpc.ts';
import type { EntityJson } from './cedar.ts';
import { everyObject } from './reads.ts';

/** An entity uid as a policy or a request names it. */
export interface EntityRef {
  readonly type: string;
  readonly id: string;
}

/**
 * A principal or resource scope constraint, as far as slicing understands it.
 * Anything else (a template slot, a shape a newer Cedar adds) is `unknown`,
 * and an unknown constraint is always kept.
 */
export type ScopeConstraint =
  | { readonly op: 'All' }
  | { readonly op: '=='; readonly entity: EntityRef }
  | { readonly op: 'in'; readonly entity: EntityRef }
  | { readonly op: 'is'; readonly entityType: string; readonly in?: EntityRef }
  | { readonly op: 'unknown' };

const UNKNOWN: ScopeConstraint = { op: 'unknown' };

/** A scope constraint from `policyToJson` output (`principal` or `resource`). */
export function scopeConstraint(json: unknown): ScopeConstraint {
  if (!isObject(json) || 'slot' in json) return UNKNOWN;
  if (json.op === 'All') return { op: 'All' };
  if (json.op === '==' || json.op === 'in') {
    const entity = entityRef(json.entity);
    return entity ? { op: json.op, entity } : UNKNOWN;
  }
  if (json.op === 'is' && typeof json.entity_type === 'string') {
    if (json.in === undefined) return { op: 'is', entityType: json.entity_type };
    const within = isObject(json.in) && !('slot' in json.in) ? entityRef(json.in.entity) : undefined;
    return within ? { op: 'is', entityType: json.entity_type, in: within } : UNKNOWN;
  }
  return UNKNOWN;
}

/** `{type, id}` or Cedar's `{__entity: {type, id}}`; undefined for anything else. */
export function entityRef(json: unknown): EntityRef | undefined {
  const uid = isObject(json) && isObject(json.__entity) ? json.__entity : json;
  if (!isObject(uid) || typeof uid.type !== 'string' || typeof uid.id !== 'string') return undefined;
  return { type: uid.type, id: uid.id };
}

/** One string per uid, injective (ids may hold any character). */
export const entityKey = (e: EntityRef): string => JSON.stringify([e.type, e.id]);

/** The entities a constraint names (what a request's view must be projected on). */
export function namedEntities(c: ScopeConstraint): EntityRef[] {
  if (c.op === '==' || c.op === 'in') return [c.entity];
  if (c.op === 'is' && c.in) return [c.in];
  return [];
}

/** The parent edges of a request's entities, as Cedar derives membership from them. */
export class EntityGraph {
  private readonly parentsOf: ReadonlyMap<string, readonly EntityRef[]>;
  /** No entity's parent is itself one of the entities: every entity's ancestors are exactly its parents. */
  readonly flat: boolean;

  private constructor(parentsOf: ReadonlyMap<string, readonly EntityRef[]>) {
    this.parentsOf = parentsOf;
    this.flat = [...parentsOf.values()].every((parents) =>
      parents.every((p) => !parentsOf.has(entityKey(p))),
    );
  }

  /** Undefined when an entity's shape is not understood (then nothing may be sliced away). */
  static of(entities: readonly EntityJson[]): EntityGraph | undefined {
    const parentsOf = new Map<string, EntityRef[]>();
    for (const e of entities) {
      const ref = entityRef(e.uid);
      const parents = (e.parents ?? []).map(entityRef);
      if (!ref || parents.some((p) => p === undefined)) return undefined;
      const key = entityKey(ref);
      parentsOf.set(key, [...(parentsOf.get(key) ?? []), ...(parents as EntityRef[])]);
    }
    return new EntityGraph(parentsOf);
  }

  /** Every entity `uid` is `in`: its parents, their parents among the entities, and so on. */
  ancestors(uid: EntityRef): Set<string> {
    const found = new Set<string>();
    const queue = [entityKey(uid)];
    for (let key = queue.pop(); key !== undefined; key = queue.pop()) {
      for (const parent of this.parentsOf.get(key) ?? []) {
        const parentKey = entityKey(parent);
        if (found.has(parentKey)) continue;
        found.add(parentKey);
        queue.push(parentKey);
      }
    }
    return found;
  }
}

/**
 * The entities a policy can test membership in: every entity it names
 * (scopes and literals in its conditions). `true` when a condition's `in`
 * has a right side that is not an entity literal: then any ancestor may matter.
 */
export function membershipTargetsOf(policyJson: unknown): ReadonlySet<string> | true {
  const named = new Set<string>();
  return collectMembership(policyJson, named) ? named : true;
}

function collectMembership(policyJson: unknown, named: Set<string>): boolean {
  return everyObject(policyJson, (node) => {
    const ref = entityRef(node);
    if (ref) named.add(entityKey(ref));
    if (isObject(node.in) && 'right' in node.in && !isEntityLiteral(node.in.right)) return false;
    return !(isObject(node.is) && node.is.in !== undefined && !isEntityLiteral(node.is.in));
  });
}

/** Every entity uid a policy writes out (scope or conditions), as `entityKey`s. */
export function namedUidsOf(policyJson: unknown): ReadonlySet<string> {
  const uids = new Set<string>();
  everyObject(policyJson, (node) => {
    const ref = entityRef(node);
    if (ref) uids.add(entityKey(ref));
    return true;
  });
  return uids;
}

/** An entity, or a set of entities, written out in the policy. */
function isEntityLiteral(expr: unknown): boolean {
  if (!isObject(expr)) return false;
  if (Array.isArray(expr.Set)) return expr.Set.every((e) => isObject(e) && entityRef(e.Value) !== undefined);
  const value = expr.Value;
  return Array.isArray(value)
    ? value.every((v) => entityRef(v) !== undefined)
    : entityRef(value) !== undefined;
}

/**
 * What slicing needs to know of a request's principal or resource, projected
 * on the entities the policies name: its type, its own uid if a policy names
 * it, and the named entities it is in. Two requests with the same view are
 * matched by exactly the same scope constraints, so the view can key a cache.
 */
export interface ScopeView {
  readonly type: string;
  readonly self: string | null;
  readonly within: readonly string[];
}

export function scopeView(
  uid: EntityRef,
  ancestors: ReadonlySet<string>,
  named: ReadonlySet<string>,
): ScopeView {
  const self = entityKey(uid);
  return {
    type: uid.type,
    self: named.has(self) ? self : null,
    within: [...ancestors].filter((a) => named.has(a)).sort(),
  };
}

/**
 * False only when the constraint provably cannot match: every entity it names
 * is in `named`, so a uid absent from the view is not that entity.
 */
export function mayMatch(c: ScopeConstraint, view: ScopeView): boolean {
  switch (c.op) {
    case '==':
      return view.self === entityKey(c.entity);
    case 'in':
      return isIn(view, c.entity);
    case 'is':
      return c.entityType === view.type && (c.in === undefined || isIn(view, c.in));
    default:
      return true;
  }
}

function isIn(view: ScopeView, entity: EntityRef): boolean {
  const key = entityKey(entity);
  return view.self === key || view.within.includes(key);
}
