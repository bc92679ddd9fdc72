import type { PolicyJson } from './cedar.ts';

/**
 * Residual policies over the context alone, evaluated in JS when they use
 * nothing but a small, exactly specified part of Cedar: boolean, integer and
 * string literals, attributes of the context, `&&`, `||`, `!`, `if`, `==`,
 * `!=`, `<`, `<=`, `>`, `>=`, set literals, `contains`, `containsAll`,
 * `containsAny` and `isEmpty`. A Cedar call costs about 100 µs
 * on a busy gateway (most of it at the wasm boundary); this costs a few.
 *
 * It never decides anything Cedar would not: on any value outside plain
 * well-formed JSON (a float, a lone surrogate, an extension or entity escape)
 * anywhere in the context, and on any operand of a type Cedar would reject
 * or treat in a way not written here, it gives up (`BAIL`) and the call goes
 * to Cedar with the same residuals. So it only ever answers when Cedar would
 * answer the same without an error. A differential test holds it to that.
 */

export const BAIL: unique symbol = Symbol('bail');
type Value = boolean | number | string | readonly unknown[] | Readonly<Record<string, unknown>>;
type Expr = (context: Readonly<Record<string, unknown>>) => Value | typeof BAIL;

interface CompiledPolicy {
  readonly id: string;
  readonly forbid: boolean;
  readonly conditions: readonly { readonly when: boolean; readonly test: Expr }[];
}

export interface ResidualDecision {
  readonly decision: 'allow' | 'deny';
  readonly reason: readonly string[];
}

export type CompiledResiduals = (context: Record<string, unknown>) => ResidualDecision | typeof BAIL;

class NotCompiled extends Error {}

/** The residual set as a JS function, or null when some policy uses more than this evaluator knows. */
export function compileResiduals(policies: Readonly<Record<string, PolicyJson>>): CompiledResiduals | null {
  let compiled: CompiledPolicy[];
  try {
    compiled = Object.entries(policies).map(([id, p]) => ({
      id,
      forbid: p.effect === 'forbid',
      conditions: p.conditions.map((c) => ({ when: c.kind === 'when', test: expression(c.body) })),
    }));
  } catch (err) {
    if (err instanceof NotCompiled) return null;
    throw err;
  }
  return (context) => (plainJson(context) ? decide(compiled, context) : BAIL);
}

function decide(policies: readonly CompiledPolicy[], context: Record<string, unknown>) {
  const permits: string[] = [];
  const forbids: string[] = [];
  for (const p of policies) {
    let holds = true;
    for (const c of p.conditions) {
      const v = c.test(context);
      if (typeof v !== 'boolean') return BAIL;
      if (v !== c.when) {
        holds = false;
        break;
      }
    }
    if (holds) (p.forbid ? forbids : permits).push(p.id);
  }
  if (forbids.length > 0) return { decision: 'deny' as const, reason: forbids };
  return permits.length > 0
    ? { decision: 'allow' as const, reason: permits }
    : { decision: 'deny' as const, reason: [] };
}

function expression(node: unknown): Expr {
  if (!isRecord(node)) throw new NotCompiled('not an expression');
  const entries = Object.entries(node);
  if (entries.length !== 1) throw new NotCompiled('not an expression');
  const [op, arg] = entries[0]!;
  switch (op) {
    case 'Value':
      return literal(arg);
    case 'Var':
      if (arg !== 'context') throw new NotCompiled('variable');
      return (context) => context;
    case '.':
      return attribute(arg);
    case '&&':
    case '||':
      return logical(op, arg);
    case '!':
      return not(arg);
    case 'if-then-else':
      return conditional(arg);
    case '==':
    case '!=':
    case '<':
    case '<=':
    case '>':
    case '>=':
      return comparison(op, arg);
    case 'Set':
      return setLiteral(arg);
    case 'contains':
      return contains(arg);
    case 'containsAll':
    case 'containsAny':
      return containsSet(op, arg);
    case 'isEmpty':
      return isEmpty(arg);
    default:
      throw new NotCompiled(op);
  }
}

function literal(v: unknown): Expr {
  if (typeof v === 'boolean' || isLong(v) || (typeof v === 'string' && v.isWellFormed())) return () => v;
  throw new NotCompiled('literal');
}

function attribute(arg: unknown): Expr {
  if (!isRecord(arg) || typeof arg.attr !== 'string') throw new NotCompiled('.');
  const left = expression(arg.left);
  const name = arg.attr;
  return (context) => {
    const record = left(context);
    // Enumerable own properties only: what JSON.stringify, and so Cedar, sees.
    if (!isRecord(record) || !Object.prototype.propertyIsEnumerable.call(record, name)) return BAIL;
    return record[name] as Value;
  };
}

function operands(arg: unknown): [Expr, Expr] {
  if (!isRecord(arg)) throw new NotCompiled('operands');
  return [expression(arg.left), expression(arg.right)];
}

function logical(op: '&&' | '||', arg: unknown): Expr {
  const [left, right] = operands(arg);
  // Cedar short-circuits: the right side is not evaluated (and cannot fail) once the left decides.
  const decided = op === '||';
  return (context) => {
    const l = left(context);
    if (typeof l !== 'boolean') return BAIL;
    if (l === decided) return decided;
    const r = right(context);
    return typeof r === 'boolean' ? r : BAIL;
  };
}

function not(arg: unknown): Expr {
  if (!isRecord(arg)) throw new NotCompiled('!');
  const inner = expression(arg.arg);
  return (context) => {
    const v = inner(context);
    return typeof v === 'boolean' ? !v : BAIL;
  };
}

function conditional(arg: unknown): Expr {
  if (!isRecord(arg)) throw new NotCompiled('if');
  const [test, then, otherwise] = [expression(arg.if), expression(arg.then), expression(arg.else)];
  return (context) => {
    const c = test(context);
    if (typeof c !== 'boolean') return BAIL;
    return c ? then(context) : otherwise(context);
  };
}

function comparison(op: '==' | '!=' | '<' | '<=' | '>' | '>=', arg: unknown): Expr {
  const [left, right] = operands(arg);
  return (context) => {
    const l = left(context);
    if (l === BAIL) return BAIL;
    const r = right(context);
    if (r === BAIL) return BAIL;
    if (op === '==' || op === '!=') {
      // Equality across types is false in Cedar; only primitives are compared here.
      if (!isPrimitive(l) || !isPrimitive(r)) return BAIL;
      return (l === r) === (op === '==');
    }
    if (!isLong(l) || !isLong(r)) return BAIL;
    return op === '<' ? l < r : op === '<=' ? l <= r : op === '>' ? l > r : l >= r;
  };
}

function contains(arg: unknown): Expr {
  const [left, right] = operands(arg);
  return (context) => {
    const set = left(context);
    const item = right(context);
    if (!Array.isArray(set) || !isPrimitive(item) || !set.every(isPrimitive)) return BAIL;
    return set.includes(item);
  };
}

/** `[a, b]`: the elements' values (what the set operators then require to be primitives). */
function setLiteral(arg: unknown): Expr {
  if (!Array.isArray(arg)) throw new NotCompiled('Set');
  const elements = arg.map(expression);
  return (context) => {
    const out: Value[] = [];
    for (const e of elements) {
      const v = e(context);
      if (v === BAIL) return BAIL;
      out.push(v);
    }
    return out;
  };
}

/** `left.containsAll(right)` / `left.containsAny(right)`, over sets of primitives only. */
function containsSet(op: 'containsAll' | 'containsAny', arg: unknown): Expr {
  const [left, right] = operands(arg);
  return (context) => {
    const set = left(context);
    if (set === BAIL) return BAIL;
    const items = right(context);
    if (!Array.isArray(set) || !Array.isArray(items) || !set.every(isPrimitive) || !items.every(isPrimitive))
      return BAIL;
    return op === 'containsAll' ? items.every((i) => set.includes(i)) : items.some((i) => set.includes(i));
  };
}

/**
 * `set.isEmpty()`: a context array is a Cedar set, empty exactly when the
 * array is (duplicates collapse, but never to nothing); anything else is a
 * type error in Cedar, so it goes there.
 */
function isEmpty(arg: unknown): Expr {
  if (!isRecord(arg)) throw new NotCompiled('isEmpty');
  const inner = expression(arg.arg);
  return (context) => {
    const set = inner(context);
    return Array.isArray(set) ? set.length === 0 : BAIL;
  };
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

const isLong = (v: unknown): v is number => Number.isSafeInteger(v);

const isPrimitive = (v: unknown): v is boolean | number | string =>
  typeof v === 'boolean' || isLong(v) || typeof v === 'string';

/** Cedar reads its context through serde_json, which refuses nesting past 128; stay well inside. */
const MAX_DEPTH = 64;

/**
 * Whether Cedar reads `value` as the same plain value JS does: strings and
 * keys without lone surrogates, integers, booleans, dense arrays and plain
 * records (no prototype tricks, no `toJSON`), nested at most MAX_DEPTH deep,
 * and no `__extn` / `__entity` / `__expr` escapes anywhere.
 */
function plainJson(value: unknown, depth = 0): boolean {
  switch (typeof value) {
    case 'boolean':
      return true;
    case 'number':
      return isLong(value);
    case 'string':
      return value.isWellFormed();
    case 'object':
      if (value === null || depth >= MAX_DEPTH) return false;
      return Array.isArray(value) ? plainArray(value, depth) : plainRecord(value, depth);
    default:
      return false;
  }
}

function plainArray(values: readonly unknown[], depth: number): boolean {
  if (Object.getPrototypeOf(values) !== Array.prototype || Object.hasOwn(values, 'toJSON')) return false;
  for (let i = 0; i < values.length; i++)
    if (!(i in values) || !plainJson(values[i], depth + 1)) return false;
  return true;
}

function plainRecord(record: object, depth: number): boolean {
  const proto = Object.getPrototypeOf(record);
  if ((proto !== Object.prototype && proto !== null) || 'toJSON' in record) return false;
  for (const k of Object.keys(record)) {
    // A getter could answer JSON.stringify (what Cedar reads) and this evaluator differently.
    const d = Object.getOwnPropertyDescriptor(record, k);
    if (!d || !('value' in d)) return false;
    if (k.startsWith('__') || !k.isWellFormed() || !plainJson(d.value, depth + 1)) return false;
  }
  return true;
}
