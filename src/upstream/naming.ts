/** Separator between an upstream's prefix and its own tool or prompt name: `fs__read_file`. */
export const SEPARATOR = '__';

export const exposeName = (prefix: string, name: string): string =>
  prefix === '' ? name : `${prefix}${SEPARATOR}${name}`;

/**
 * Splits an exposed name into the upstream prefix and the upstream's own name.
 * Prefixes never contain the separator, so the first one splits unambiguously.
 */
export function splitName(
  exposed: string,
  prefixes: ReadonlySet<string>,
): { prefix: string; name: string } | undefined {
  if (prefixes.has('')) return { prefix: '', name: exposed };
  const at = exposed.indexOf(SEPARATOR);
  if (at <= 0) return undefined;
  const prefix = exposed.slice(0, at);
  const name = exposed.slice(at + SEPARATOR.length);
  return prefixes.has(prefix) && name.length > 0 ? { prefix, name } : undefined;
}
