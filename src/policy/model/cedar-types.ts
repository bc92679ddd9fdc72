import { isObject, type JsonObject } from '../../jsonrpc.ts';

/** The subset of Cedar's JSON schema types that tool arguments map to. */
export type CedarType =
  | { type: 'String' }
  | { type: 'Long' }
  | { type: 'Boolean' }
  | { type: 'Extension'; name: 'decimal' | 'ipaddr' }
  | { type: 'Set'; element: CedarType }
  | { type: 'Record'; attributes: Record<string, CedarType & { required?: boolean }> };

const MAX_TYPE_DEPTH = 16;

/**
 * The Cedar type of an argument's JSON Schema: string, integer→Long, boolean,
 * number→decimal, objects as records (declared properties only), arrays as sets.
 * Undefined when the schema has no single Cedar type (unions, null, untyped):
 * such an argument is invisible to policy, and a policy naming it fails validation.
 */
export function cedarTypeOf(schema: unknown, depth = 0): CedarType | undefined {
  if (!isObject(schema) || depth > MAX_TYPE_DEPTH) return undefined;
  const type = singleType(schema);
  switch (type) {
    case 'string':
      return { type: 'String' };
    case 'integer':
      return { type: 'Long' };
    case 'number':
      return { type: 'Extension', name: 'decimal' };
    case 'boolean':
      return { type: 'Boolean' };
    case 'array': {
      const element = cedarTypeOf(schema.items, depth + 1);
      return element ? { type: 'Set', element } : undefined;
    }
    case 'object':
      return recordOf(schema, depth);
    default:
      return undefined;
  }
}

/** A tool's whole input: always a record, empty when the schema declares nothing usable. */
export function inputRecordType(inputSchema: unknown): Extract<CedarType, { type: 'Record' }> {
  return (isObject(inputSchema) && recordOf(inputSchema, 0)) || { type: 'Record', attributes: {} };
}

function recordOf(schema: JsonObject, depth: number): Extract<CedarType, { type: 'Record' }> {
  const props = isObject(schema.properties) ? schema.properties : {};
  const required = new Set(Array.isArray(schema.required) ? schema.required.map(String) : []);
  const attributes: Record<string, CedarType & { required?: boolean }> = {};
  for (const [name, sub] of Object.entries(props)) {
    const t = cedarTypeOf(sub, depth + 1);
    if (t) attributes[name] = { ...t, required: required.has(name) };
  }
  return { type: 'Record', attributes };
}

function singleType(schema: JsonObject): string | undefined {
  if (typeof schema.type === 'string') return schema.type;
  if (
    schema.type === undefined &&
    Array.isArray(schema.enum) &&
    schema.enum.every((e) => typeof e === 'string')
  ) {
    return 'string';
  }
  if (schema.type === undefined && isObject(schema.properties)) return 'object';
  return undefined;
}

export class NotRepresentable extends Error {}

const DECIMAL_MAX = 922_337_203_685_477;

/**
 * The Cedar JSON value of an argument, by its Cedar type. Numbers that Cedar's
 * decimal cannot hold exactly (more than 4 fractional digits, out of range) are
 * refused rather than rounded: policy must see exactly what is forwarded.
 */
export function toCedarValue(type: CedarType, value: unknown): unknown {
  switch (type.type) {
    case 'String':
      if (typeof value !== 'string') throw new NotRepresentable('expected a string');
      return value;
    case 'Boolean':
      if (typeof value !== 'boolean') throw new NotRepresentable('expected a boolean');
      return value;
    case 'Long':
      if (typeof value !== 'number' || !Number.isSafeInteger(value))
        throw new NotRepresentable('expected an integer');
      return value;
    case 'Extension':
      return decimalValue(value);
    case 'Set':
      if (!Array.isArray(value)) throw new NotRepresentable('expected an array');
      return value.map((v) => toCedarValue(type.element, v));
    case 'Record': {
      if (!isObject(value)) throw new NotRepresentable('expected an object');
      const out: Record<string, unknown> = {};
      for (const [name, t] of Object.entries(type.attributes)) {
        if (value[name] !== undefined) out[name] = toCedarValue(t, value[name]);
        else if (t.required) throw new NotRepresentable(`missing ${name}`);
      }
      return out;
    }
  }
}

function decimalValue(value: unknown): unknown {
  if (typeof value !== 'number' || !Number.isFinite(value) || Math.abs(value) >= DECIMAL_MAX) {
    throw new NotRepresentable('number out of decimal range');
  }
  const fixed = value.toFixed(4);
  if (Number(fixed) !== value) throw new NotRepresentable('number has more than 4 fractional digits');
  return { __extn: { fn: 'decimal', arg: fixed } };
}

/** A Cedar schema type written without the `required` flags Cedar rejects on non-attributes. */
export function schemaType(t: CedarType): unknown {
  if (t.type === 'Set') return { type: 'Set', element: schemaType(t.element) };
  if (t.type !== 'Record') return t;
  const attributes: Record<string, unknown> = {};
  for (const [name, a] of Object.entries(t.attributes)) {
    attributes[name] = { ...(schemaType(a) as object), required: a.required === true };
  }
  return { type: 'Record', attributes };
}
