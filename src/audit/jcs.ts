import { AuditError } from './errors.ts';

/** RFC 8785 JSON Canonicalization Scheme for JSON values. */
export function canonicalize(value: unknown): string {
  if (value === null || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new AuditError('ERR_AUDIT_NOT_JSON', 'non-finite number');
    return JSON.stringify(value);
  }
  if (typeof value === 'string') {
    if (/\p{Cs}/u.test(value)) throw new AuditError('ERR_AUDIT_NOT_JSON', 'lone surrogate in string');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalize).join(',')}]`;
  if (typeof value === 'object') {
    // Default sort compares UTF-16 code units, as RFC 8785 §3.2.3 requires.
    const keys = Object.keys(value).sort();
    const obj = value as Record<string, unknown>;
    const members = keys
      .filter((k) => obj[k] !== undefined)
      .map((k) => `${canonicalize(k)}:${canonicalize(obj[k])}`);
    return `{${members.join(',')}}`;
  }
  throw new AuditError('ERR_AUDIT_NOT_JSON', `not a JSON value: ${typeof value}`);
}
