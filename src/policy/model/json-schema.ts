import { isObject, type JsonObject } from '../../jsonrpc.ts';

/**
 * A small JSON Schema subset checker for tool arguments: type, properties,
 * required, additionalProperties: false, items, enum, const, min/max length,
 * minimum/maximum, min/max items. Written here rather than taking the SDK's
 * Ajv provider because the schemas come from untrusted upstreams: Ajv compiles
 * each one into generated code, and honours `pattern` with V8's backtracking
 * regex engine (ReDoS). This walks the schema as data, bounded in depth, and
 * ignores keywords it does not know (the upstream still validates its own input).
 * Messages name schema properties only, never the caller's values.
 */
export function checkAgainstSchema(schema: unknown, value: unknown, maxDepth = 64): string[] {
  const errors: string[] = [];
  walk(schema, value, '', 0, maxDepth, errors);
  return errors;
}

function walk(
  schema: unknown,
  value: unknown,
  path: string,
  depth: number,
  maxDepth: number,
  out: string[],
): void {
  if (out.length >= 10) return;
  if (depth > maxDepth) {
    out.push(`${at(path)} is nested too deeply`);
    return;
  }
  if (schema === false) {
    out.push(`${at(path)} is not allowed`);
    return;
  }
  if (!isObject(schema)) return;
  if (!typeMatches(schema.type, value)) {
    out.push(`${at(path)} must be ${describeType(schema.type)}`);
    return;
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((e) => sameJson(e, value))) {
    out.push(`${at(path)} must be one of the allowed values`);
  }
  if ('const' in schema && !sameJson(schema.const, value)) out.push(`${at(path)} must be the fixed value`);
  if (typeof value === 'string') checkString(schema, value, path, out);
  else if (typeof value === 'number') checkNumber(schema, value, path, out);
  else if (Array.isArray(value)) checkArray(schema, value, path, depth, maxDepth, out);
  else if (isObject(value)) checkObject(schema, value, path, depth, maxDepth, out);
}

function checkString(schema: JsonObject, value: string, path: string, out: string[]): void {
  const length = [...value].length;
  if (typeof schema.minLength === 'number' && length < schema.minLength) out.push(`${at(path)} is too short`);
  if (typeof schema.maxLength === 'number' && length > schema.maxLength) out.push(`${at(path)} is too long`);
}

function checkNumber(schema: JsonObject, value: number, path: string, out: string[]): void {
  if (typeof schema.minimum === 'number' && value < schema.minimum)
    out.push(`${at(path)} is below the minimum`);
  if (typeof schema.maximum === 'number' && value > schema.maximum)
    out.push(`${at(path)} is above the maximum`);
}

function checkArray(
  schema: JsonObject,
  value: unknown[],
  path: string,
  depth: number,
  maxDepth: number,
  out: string[],
): void {
  if (typeof schema.minItems === 'number' && value.length < schema.minItems)
    out.push(`${at(path)} has too few items`);
  if (typeof schema.maxItems === 'number' && value.length > schema.maxItems)
    out.push(`${at(path)} has too many items`);
  if (schema.items === undefined) return;
  value.forEach((item, i) => {
    walk(schema.items, item, `${path}[${i}]`, depth + 1, maxDepth, out);
  });
}

function checkObject(
  schema: JsonObject,
  value: JsonObject,
  path: string,
  depth: number,
  maxDepth: number,
  out: string[],
): void {
  const props = isObject(schema.properties) ? schema.properties : {};
  if (Array.isArray(schema.required)) {
    for (const key of schema.required) {
      if (typeof key === 'string' && !(key in value)) out.push(`${at(join(path, key))} is required`);
    }
  }
  for (const [key, v] of Object.entries(value)) {
    if (Object.hasOwn(props, key)) walk(props[key], v, join(path, key), depth + 1, maxDepth, out);
    else if (schema.additionalProperties === false)
      out.push(`${at(join(path, key))} is not a known argument`);
    else if (isObject(schema.additionalProperties)) {
      walk(schema.additionalProperties, v, join(path, key), depth + 1, maxDepth, out);
    }
  }
}

function typeMatches(type: unknown, value: unknown): boolean {
  if (type === undefined) return true;
  if (Array.isArray(type)) return type.some((t) => typeMatches(t, value));
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'null':
      return value === null;
    case 'array':
      return Array.isArray(value);
    case 'object':
      return isObject(value);
    default:
      return false;
  }
}

const describeType = (type: unknown): string =>
  Array.isArray(type) ? `one of ${type.map(String).join(', ')}` : `of type ${String(type)}`;

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

const join = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);
const at = (path: string): string => (path === '' ? 'arguments' : `argument \`${path.slice(0, 120)}\``);
