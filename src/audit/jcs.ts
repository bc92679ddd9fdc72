import { isDeepFrozen } from '../freeze.ts';
import { AuditError } from './errors.ts';

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what JSON escapes
const ESCAPED = /["\\\u0000-\u001f]/;

/**
 * RFC 8785 JSON Canonicalization Scheme for JSON values. Written as one
 * recursive concatenation: it runs several times per call (both records, the
 * argument and result hashes), and the map/filter/join form cost twice as much.
 */
export function canonicalize(value: unknown): string {
  switch (typeof value) {
    case 'string':
      if (!value.isWellFormed()) throw new AuditError('ERR_AUDIT_NOT_JSON', 'lone surrogate in string');
      // A well-formed string with nothing to escape is itself in quotes; JSON.stringify costs several times the test.
      return ESCAPED.test(value) ? JSON.stringify(value) : `"${value}"`;
    case 'number':
      if (!Number.isFinite(value)) throw new AuditError('ERR_AUDIT_NOT_JSON', 'non-finite number');
      // ECMAScript's Number to String, which RFC 8785 §3.2.2.3 prescribes (and JSON.stringify uses).
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      if (value === null) return 'null';
      if (!inKept && isDeepFrozen(value)) return canonicalFrozen(value);
      return Array.isArray(value) ? canonicalArray(value) : canonicalObject(value as Record<string, unknown>);
    default:
      throw new AuditError('ERR_AUDIT_NOT_JSON', `not a JSON value: ${typeof value}`);
  }
}

/**
 * The canonical text of deep-frozen values, made once: a value that cannot change has one
 * text, and shared frozen values (a kept tool listing's items) are signed and hashed on
 * every list. Held weakly: the text goes when the value does.
 */
const frozenTexts = new WeakMap<object, string>();
/**
 * Whether a kept text is being made: the values inside it are not kept apart, so what is
 * kept grows with a value's size, never with its size times its depth.
 */
let inKept = false;

/**
 * V8 keeps a string built by `+=` as a tree of its pieces and walks the tree each time the
 * string is read whole (hashed); a kept text read on every list is made one piece once.
 * Converting a string to a number flattens it in place; the result is used so it is not elided.
 */
const flattened = (text: string): string => (Number.isNaN(Number(text)) ? text : text);

function canonicalFrozen(value: object): string {
  let text = frozenTexts.get(value);
  if (text === undefined) {
    inKept = true;
    try {
      text = flattened(
        Array.isArray(value) ? canonicalArray(value) : canonicalObject(value as Record<string, unknown>),
      );
    } finally {
      inKept = false;
    }
    frozenTexts.set(value, text);
  }
  return text;
}

function canonicalArray(values: readonly unknown[]): string {
  let out = '[';
  for (let i = 0; i < values.length; i++) out += (i === 0 ? '' : ',') + canonicalize(values[i]);
  return `${out}]`;
}

function canonicalObject(obj: Record<string, unknown>): string {
  // Default sort compares UTF-16 code units, as RFC 8785 §3.2.3 requires.
  const keys = Object.keys(obj).sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const v = obj[key];
    if (v === undefined) continue;
    out += `${first ? '' : ','}${canonicalize(key)}:${canonicalize(v)}`;
    first = false;
  }
  return `${out}}`;
}

/** The canonical text of each member of an object by key (undefined members left out), for `canonicalFromMembers`. */
export function canonicalMembers(obj: Record<string, unknown>): Map<string, string> {
  const out = new Map<string, string>();
  for (const key of Object.keys(obj)) {
    const v = obj[key];
    if (v !== undefined) out.set(key, canonicalize(v));
  }
  return out;
}

/** An object's canonical text from its members' (`canonicalMembers`): the same text `canonicalize` gives it. */
export function canonicalFromMembers(members: ReadonlyMap<string, string>): string {
  let out = '{';
  let first = true;
  for (const key of [...members.keys()].sort()) {
    out += `${first ? '' : ','}${canonicalize(key)}:${members.get(key)}`;
    first = false;
  }
  return `${out}}`;
}
