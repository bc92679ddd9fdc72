import { isObject } from '../../jsonrpc.ts';

/**
 * Which context attributes a policy (or a slice of policies) reads: `true`
 * reads the value wholly; a map reads only the attributes it names, each as
 * deep as its own entry says. An empty map reads nothing.
 */
export type ContextReads = true | ReadonlyMap<string, ContextReads>;

type MutableReads = true | Map<string, MutableReads>;

/**
 * The context attribute paths the conditions of a policy (its `policyToJson`
 * form) read. Cedar reaches into a record only by `.attr`, `["attr"]` and
 * `has` (all `.`/`has` nodes here, escapes decoded); every other use of
 * `context` or of a chain on it reads that value wholly.
 */
export function contextReadsOf(conditions: unknown): ContextReads {
  const paths: string[][] = [];
  collectPaths(conditions, paths);
  return paths.reduce<MutableReads>((tree, path) => withPath(tree, path), new Map());
}

function collectPaths(node: unknown, paths: string[][]): void {
  if (Array.isArray(node)) {
    for (const child of node) collectPaths(child, paths);
    return;
  }
  if (!isObject(node)) return;
  const path = accessPath(node);
  if (path) paths.push(path);
  else for (const child of Object.values(node)) collectPaths(child, paths);
}

/** The attribute path when `node` is `context` or a `.`/`has` chain on it; undefined otherwise. */
function accessPath(node: unknown): string[] | undefined {
  if (!isObject(node)) return undefined;
  const keys = Object.keys(node);
  if (keys.length !== 1) return undefined;
  if (keys[0] === 'Var') return node.Var === 'context' ? [] : undefined;
  if (keys[0] !== '.' && keys[0] !== 'has') return undefined;
  const access = node[keys[0]];
  if (!isObject(access)) return undefined;
  const base = accessPath(access.left);
  if (!base) return undefined;
  const attrs = typeof access.attr === 'string' ? [access.attr] : access.attr;
  const understood = Array.isArray(attrs) && attrs.every((a) => typeof a === 'string');
  // An attribute form not understood: the chain below it is read wholly.
  return understood ? [...base, ...(attrs as string[])] : base;
}

function withPath(tree: MutableReads, path: readonly string[]): MutableReads {
  if (tree === true) return true;
  if (path.length === 0) return true;
  const [head, ...rest] = path as [string, ...string[]];
  tree.set(head, withPath(tree.get(head) ?? new Map(), rest));
  return tree;
}

/** What any of several policies reads. */
export function mergeReads(all: readonly ContextReads[]): ContextReads {
  return all.reduce<MutableReads>((tree, reads) => merged(tree, reads), new Map());
}

function merged(into: MutableReads, reads: ContextReads): MutableReads {
  if (into === true || reads === true) return true;
  for (const [attr, below] of reads) into.set(attr, merged(into.get(attr) ?? new Map(), below));
  return into;
}

/**
 * `context` with only what some read path reaches: a policy cannot depend on
 * what it cannot see. Values that are not plain records (extension and
 * entity escapes, sets) are kept whole once reached.
 */
export function pruneContext(context: Record<string, unknown>, reads: ContextReads): Record<string, unknown> {
  return pruned(context, reads) as Record<string, unknown>;
}

function pruned(value: unknown, reads: ContextReads): unknown {
  if (reads === true || !isPlainRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [attr, below] of reads) if (Object.hasOwn(value, attr)) out[attr] = pruned(value[attr], below);
  return out;
}

/**
 * Every attribute name any `.`/`has` node of the conditions names, whatever it
 * is read on; `true` when one is not understood. Cedar reads an entity's
 * attributes only through such nodes (equality compares uids), so an entity
 * attribute no name here matches cannot be read.
 */
export function attributesNamedIn(conditions: unknown): ReadonlySet<string> | true {
  const names = new Set<string>();
  return collectNames(conditions, names) ? names : true;
}

/** False when an attribute form is not understood. */
function collectNames(conditions: unknown, names: Set<string>): boolean {
  return everyObject(conditions, (node) => {
    for (const [key, child] of Object.entries(node)) {
      if ((key !== '.' && key !== 'has') || !isObject(child)) continue;
      const attrs = typeof child.attr === 'string' ? [child.attr] : child.attr;
      if (!Array.isArray(attrs) || !attrs.every((a) => typeof a === 'string')) return false;
      for (const a of attrs) names.add(a);
    }
    return true;
  });
}

/**
 * Visits every object of a policy's JSON form, depth first, and stops as soon
 * as `visit` returns false (then so does this).
 */
export function everyObject(node: unknown, visit: (o: Record<string, unknown>) => boolean): boolean {
  if (Array.isArray(node)) return node.every((child) => everyObject(child, visit));
  if (!isObject(node)) return true;
  return visit(node) && Object.values(node).every((child) => everyObject(child, visit));
}

/** The attribute names any of several policies reads. */
export function mergeNames(all: readonly (ReadonlySet<string> | true)[]): ReadonlySet<string> | true {
  const names = new Set<string>();
  for (const set of all) {
    if (set === true) return true;
    for (const name of set) names.add(name);
  }
  return names;
}

const isPlainRecord = (v: unknown): v is Record<string, unknown> =>
  isObject(v) && !Object.hasOwn(v, '__extn') && !Object.hasOwn(v, '__entity');
