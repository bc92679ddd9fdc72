/** A host:port an upstream asked to reach, and whether its allowlist lets it. */
export interface EgressTarget {
  readonly host: string;
  readonly port: number;
}

/** Ports an allowlist entry without one covers: plain and TLS web traffic. */
const DEFAULT_PORTS: ReadonlySet<number> = new Set([80, 443]);

/**
 * Whether `target` is on `allow`. Entries match by name, as the upstream
 * asked (the proxy resolves it, not the sandbox, which has no DNS): `name`
 * exactly, `*.domain` any name below it (not the domain itself), an IP
 * literal exactly. An entry with `:port` allows that port only; without one,
 * 80 and 443.
 */
export function isAllowed(allow: readonly string[], target: EgressTarget): boolean {
  const host = normalizeHost(target.host);
  return allow.some((entry) => {
    const { name, port } = splitEntry(entry);
    if (port === undefined ? !DEFAULT_PORTS.has(target.port) : port !== target.port) return false;
    if (name.startsWith('*.')) return host.endsWith(name.slice(1)) && host.length > name.length - 1;
    return host === name;
  });
}

function splitEntry(entry: string): { name: string; port?: number } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(entry);
  const name = normalizeHost(m?.[1] ?? entry);
  return m?.[2] ? { name, port: Number(m[2]) } : { name };
}

/** Lower case, no trailing dot, IPv6 without brackets. */
export const normalizeHost = (host: string): string =>
  host
    .toLowerCase()
    .replace(/\.$/, '')
    .replace(/^\[(.*)\]$/, '$1');

/** `host:port` of a CONNECT request target or an absolute URL's authority; undefined when malformed. */
export function parseAuthority(authority: string, defaultPort?: number): EgressTarget | undefined {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(authority);
  if (!m) return undefined;
  const port = m[2] ? Number(m[2]) : defaultPort;
  if (port === undefined || port < 1 || port > 65535) return undefined;
  return { host: normalizeHost(m[1]!), port };
}
