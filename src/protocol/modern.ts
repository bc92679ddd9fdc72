import { ProtocolError } from '../errors.ts';
import { isObject, type JsonObject, type JsonRpcMessage } from '../jsonrpc.ts';
import { methodSpec, targetParam } from './methods.ts';
import { isModernVersion, META, MODERN_VERSIONS } from './versions.ts';

/** Which parameter holds a method's target when it travels in `Mcp-Name` too. */
export const nameHeaderParam = (method: string): string | undefined =>
  methodSpec(method)?.nameHeader ? targetParam(method) : undefined;

export const decodeHeaderValue = (v: string): string | undefined => {
  const m = /^=\?base64\?([A-Za-z0-9+/=]*)\?=$/.exec(v);
  if (!m) return v;
  const bytes = Buffer.from(m[1]!, 'base64');
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) ? text : undefined;
};

const mismatch = (what: string): ProtocolError =>
  new ProtocolError('ERR_HEADER_MISMATCH', `Header mismatch: ${what}`, {
    publicArgs: [what],
  });

/** The protocol version a modern message claims in `_meta`, if any. */
export function claimedVersion(message: JsonRpcMessage): string | undefined {
  const meta = isObject(message.params) ? message.params._meta : undefined;
  const v = isObject(meta) ? meta[META.protocolVersion] : undefined;
  return typeof v === 'string' ? v : undefined;
}

export interface ModernHeaders {
  protocolVersion: string | undefined;
  method: string | undefined;
  name: string | undefined;
}

/**
 * 2026-07-28 requires every reader of the body to check the mirrored headers
 * against it: a proxy that routes on headers must not be fooled by a body that
 * says something else.
 */
export function checkModernHeaders(message: JsonRpcMessage & { method: string }, h: ModernHeaders): void {
  const claimed = claimedVersion(message);
  // Disagreement is reported as such, before whether either version is supported.
  if ('id' in message && claimed !== undefined && h.protocolVersion !== claimed)
    throw mismatch('MCP-Protocol-Version');
  const version = checkModernEnvelope(message);
  if (!('id' in message)) return; // notifications are exempt from header presence checks
  if (h.protocolVersion !== version) throw mismatch('MCP-Protocol-Version');
  if (h.method !== message.method) throw mismatch('Mcp-Method');
  const key = nameHeaderParam(message.method);
  if (key !== undefined) {
    const bodyValue = (message.params as JsonObject)[key];
    const headerValue = h.name === undefined ? undefined : decodeHeaderValue(h.name);
    if (typeof bodyValue !== 'string' || headerValue !== bodyValue) throw mismatch('Mcp-Name');
  }
}

/** The `_meta` envelope every modern request carries; returns its version. */
export function checkModernEnvelope(message: JsonRpcMessage): string {
  const version = claimedVersion(message);
  if (version === undefined || !isModernVersion(version)) throw unsupportedVersion(version);
  const meta = (message.params as JsonObject)._meta as JsonObject;
  if ('id' in message && !isObject(meta[META.clientCapabilities])) {
    throw invalidMeta(`${META.clientCapabilities}: missing`);
  }
  return version;
}

/** Non-ASCII header values travel base64-encoded (MCP 2026-07-28 §HTTP headers). */
export function encodeHeaderValue(value: string): string {
  const plain = value !== '' && /^[\x20-\x7e]*$/.test(value) && value.trim() === value;
  if (plain && !value.startsWith('=?base64?')) return value;
  return `=?base64?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

/** The [argument, header name] pairs a tool's inputSchema marks with `x-mcp-header`. */
export function headerArguments(inputSchema: unknown): (readonly [string, string])[] {
  const props = isObject(inputSchema) && isObject(inputSchema.properties) ? inputSchema.properties : {};
  const marked: (readonly [string, string])[] = [];
  for (const [prop, schema] of Object.entries(props)) {
    const header = isObject(schema) ? schema['x-mcp-header'] : undefined;
    if (typeof header === 'string') marked.push([prop, header]);
  }
  return marked;
}

/**
 * The `Mcp-Param-*` headers for a call, derived from its arguments: only those
 * the tool's schema declares, with the values the body holds.
 */
export function paramHeaderValues(
  marked: readonly (readonly [string, string])[],
  args: JsonObject,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [prop, header] of marked) {
    const v = args[prop];
    if (v !== undefined && v !== null)
      out[`mcp-param-${header.toLowerCase()}`] = encodeHeaderValue(String(v));
  }
  return out;
}

/** `Mcp-Param-*` headers must agree with the arguments a tool marks with `x-mcp-header`. */
export function checkParamHeaders(
  args: JsonObject,
  inputSchema: unknown,
  headers: Record<string, string | string[] | undefined>,
): void {
  for (const [prop, headerName] of headerArguments(inputSchema)) {
    const raw = headers[`mcp-param-${headerName.toLowerCase()}`];
    const value = args[prop];
    if (value === undefined || value === null) {
      if (raw !== undefined) throw mismatch(`Mcp-Param-${headerName}`);
      continue;
    }
    if (typeof raw !== 'string' || decodeHeaderValue(raw) !== String(value))
      throw mismatch(`Mcp-Param-${headerName}`);
  }
}

export const unsupportedVersion = (requested: string | undefined): ProtocolError =>
  new ProtocolError('ERR_UNSUPPORTED_VERSION', `Unsupported protocol version: ${String(requested)}`, {
    publicArgs: [requested ?? 'the request did not name a protocol version'],
    publicData: { supported: [...MODERN_VERSIONS], ...(requested ? { requested } : {}) },
  });

export const invalidMeta = (what: string): ProtocolError =>
  new ProtocolError('ERR_INVALID_META', `Invalid _meta envelope: ${what}`, { publicArgs: [what] });

/** A result going to a modern client: `resultType` always, cache hints where the schema needs them. */
export function toModernResult(method: string, result: JsonObject): JsonObject {
  const out: JsonObject = 'resultType' in result ? { ...result } : { ...result, resultType: 'complete' };
  if (methodSpec(method)?.cacheable) {
    if (!('ttlMs' in out)) out.ttlMs = 0;
    if (!('cacheScope' in out)) out.cacheScope = 'private';
  }
  return out;
}
