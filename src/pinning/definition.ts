import { createHash } from 'node:crypto';
import { canonicalize } from '../audit/jcs.ts';
import type { JsonObject } from '../jsonrpc.ts';

/** What a tool's pin covers: everything in a listing that tells a model what the tool is and does. */
const PINNED_FIELDS = ['name', 'title', 'description', 'inputSchema', 'outputSchema', 'annotations'] as const;

/** The pinned part of a listed tool (`_meta`, `icons` and the like are not pinned). */
export function pinnedDefinition(item: JsonObject): JsonObject {
  const def: JsonObject = {};
  for (const field of PINNED_FIELDS) if (item[field] !== undefined) def[field] = item[field];
  return def;
}

/** SHA-256 (hex) of the RFC 8785 canonical form; lone surrogates become U+FFFD first, so any definition has one. */
export function definitionHash(def: unknown): string {
  return createHash('sha256')
    .update(canonicalize(wellFormed(def)))
    .digest('hex');
}

function wellFormed(value: unknown): unknown {
  if (typeof value === 'string') return value.toWellFormed();
  if (Array.isArray(value)) return value.map(wellFormed);
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.toWellFormed(), wellFormed(v)]));
  return value;
}
