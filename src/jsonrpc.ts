import { invalidRequest, parseError } from './errors.ts';

export type JsonRpcId = string | number;
export type JsonObject = Record<string, unknown>;

export interface JsonRpcRequest extends JsonObject {
  jsonrpc: '2.0';
  id: JsonRpcId;
  method: string;
  params?: JsonObject;
}
export interface JsonRpcNotification extends JsonObject {
  jsonrpc: '2.0';
  method: string;
  params?: JsonObject;
}
export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}
export interface JsonRpcResponse extends JsonObject {
  jsonrpc: '2.0';
  id: JsonRpcId | null;
  result?: JsonObject;
  error?: JsonRpcErrorObject;
}
export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v: unknown): v is JsonRpcId =>
  typeof v === 'string' || (typeof v === 'number' && Number.isSafeInteger(v));

export const isRequest = (m: JsonRpcMessage): m is JsonRpcRequest => 'method' in m && 'id' in m;
export const isNotification = (m: JsonRpcMessage): m is JsonRpcNotification => 'method' in m && !('id' in m);
export const isResponse = (m: JsonRpcMessage): m is JsonRpcResponse => !('method' in m);

export interface ParseLimits {
  /** Deepest nesting of arrays and objects; deeper messages are refused before JSON.parse. */
  readonly maxDepth: number;
}

/** Default for `listen.maxJsonDepth`. */
export const DEFAULT_MAX_JSON_DEPTH = 128;

/**
 * Parses one JSON-RPC message from text; batches are not part of MCP since
 * 2025-06-18. Nesting is bounded first: everything downstream (freezing,
 * canonical hashing, validation) may recurse over the value.
 */
export function parseMessage(
  text: string,
  limits: ParseLimits = { maxDepth: DEFAULT_MAX_JSON_DEPTH },
): JsonRpcMessage {
  if (nestingExceeds(text, limits.maxDepth)) {
    const reason = `nested deeper than ${limits.maxDepth}`;
    throw invalidRequest(reason, { reason });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw parseError(err instanceof Error ? err.message : 'unparseable');
  }
  return validateMessage(value);
}

const [QUOTE, BACKSLASH, OPEN_BRACKET, CLOSE_BRACKET, OPEN_BRACE, CLOSE_BRACE] = [...'"\\[]{}'].map((c) =>
  c.charCodeAt(0),
) as [number, number, number, number, number, number];

/**
 * Whether arrays and objects in JSON text nest deeper than `max`, counting
 * brackets outside strings. Malformed text is left to JSON.parse to refuse.
 */
export function nestingExceeds(text: string, max: number): boolean {
  // Each level needs an opening bracket: text this short cannot nest deeper.
  if (text.length <= max) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++depth > max) return true;
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) depth--;
  }
  return false;
}

/** Checks the JSON-RPC 2.0 envelope only; the payload is relayed untouched. */
export function validateMessage(value: unknown): JsonRpcMessage {
  if (!isObject(value))
    throw invalidRequest(Array.isArray(value) ? 'batches are not supported' : 'not an object');
  if (value.jsonrpc !== '2.0') throw invalidRequest('jsonrpc must be "2.0"');
  if ('method' in value) {
    if (typeof value.method !== 'string' || value.method.length === 0)
      throw invalidRequest('method must be a string');
    if ('params' in value && !isObject(value.params)) throw invalidRequest('params must be an object');
    if ('id' in value && !isId(value.id)) throw invalidRequest('id must be a string or an integer');
    return value as JsonRpcMessage;
  }
  if (!('id' in value) || !(isId(value.id) || value.id === null)) throw invalidRequest('response without id');
  const hasResult = 'result' in value;
  const hasError = 'error' in value;
  if (hasResult === hasError) throw invalidRequest('response needs exactly one of result or error');
  if (hasResult && !isObject(value.result)) throw invalidRequest('result must be an object');
  if (hasError && !isErrorObject(value.error)) throw invalidRequest('malformed error object');
  return value as JsonRpcMessage;
}

/**
 * A deep copy of a message: what the gateway decides on and forwards, out of
 * reach of whoever holds the original. JSON values (all a listener parses) are
 * copied directly, several times faster than structuredClone; anything else
 * (a Date, a Map, a function) goes to structuredClone, as before.
 */
export function snapshot<T>(value: T): T {
  return copyJson(value) as T;
}

function copyJson(v: unknown): unknown {
  if (typeof v === 'function' || typeof v === 'symbol') return structuredClone(v);
  if (typeof v !== 'object' || v === null) return v;
  const proto = Object.getPrototypeOf(v);
  if (Array.isArray(v) && proto === Array.prototype) return v.map(copyJson);
  if (proto !== Object.prototype && proto !== null) return structuredClone(v);
  const out: JsonObject = {};
  for (const key of Object.keys(v)) {
    const copy = copyJson((v as JsonObject)[key]);
    // JSON.parse makes "__proto__" an own key; an assignment would set the prototype instead.
    if (key === '__proto__')
      Object.defineProperty(out, key, { value: copy, enumerable: true, writable: true, configurable: true });
    else out[key] = copy;
  }
  return out;
}

const isErrorObject = (v: unknown): v is JsonRpcErrorObject =>
  isObject(v) && typeof v.code === 'number' && typeof v.message === 'string';

export const errorResponse = (id: JsonRpcId | null, error: JsonRpcErrorObject): JsonRpcResponse => ({
  jsonrpc: '2.0',
  id,
  error,
});

export const resultResponse = (id: JsonRpcId, result: JsonObject): JsonRpcResponse => ({
  jsonrpc: '2.0',
  id,
  result,
});

export { isObject };
