import { isLoopbackHost } from '../config/loopback.ts';

export interface RebindingGuardOptions {
  bindHost: string;
  allowedHosts: readonly string[];
  allowedOrigins: readonly string[];
}

/**
 * DNS-rebinding defence: the Host header must name this gateway, and a browser
 * Origin, when sent, must be loopback (on a loopback gateway) or listed.
 */
export function createRebindingGuard(opts: RebindingGuardOptions) {
  const loopback = isLoopbackHost(opts.bindHost);
  const hosts = new Set(opts.allowedHosts.map((h) => h.toLowerCase()));
  const origins = new Set(opts.allowedOrigins.map((o) => o.toLowerCase()));

  function hostAllowed(hostHeader: string | undefined): boolean {
    if (!hostHeader) return false;
    const h = hostHeader.toLowerCase();
    if (hosts.has(h)) return true;
    const name = stripPort(h);
    if (hosts.has(name)) return true;
    if (loopback) return isLoopbackHost(name);
    return name === opts.bindHost.toLowerCase();
  }

  function originAllowed(origin: string | undefined): boolean {
    if (origin === undefined) return true; // not a browser; Host is still checked
    const o = origin.toLowerCase();
    if (origins.has(o)) return true;
    let url: URL;
    try {
      url = new URL(o);
    } catch {
      return false;
    }
    return (
      loopback && (url.protocol === 'http:' || url.protocol === 'https:') && isLoopbackHost(url.hostname)
    );
  }

  return { hostAllowed, originAllowed };
}

function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end < 0 ? host : host.slice(0, end + 1);
  }
  const colon = host.lastIndexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}
