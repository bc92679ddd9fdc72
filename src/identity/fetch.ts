import { lookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { PortcullisError } from '../errors.ts';
import { addressRefusal, isLoopback } from './address-guard.ts';
import type { FetchConfig } from './config.ts';

export interface FetchedJson {
  readonly json: unknown;
  /** Seconds the response may be cached (Cache-Control max-age), if it said. */
  readonly maxAge?: number;
}

export type JsonFetcher = (url: string) => Promise<FetchedJson>;

const blocked = (why: string, url: string) =>
  new PortcullisError('ERR_FETCH_BLOCKED', `fetch refused: ${why}`, { detail: { url } });
const failed = (why: string, url: string, cause?: unknown) =>
  new PortcullisError('ERR_FETCH_FAILED', `fetch failed: ${why}`, { detail: { url }, cause });

/**
 * GETs JSON from an identity provider without becoming an SSRF tool: HTTPS only
 * (plain HTTP only to loopback, and only when allowed), every resolved address
 * checked and then pinned for the connection, redirects re-checked, a
 * deadline and a size cap.
 */
export function createJsonFetcher(cfg: FetchConfig): JsonFetcher {
  return async function fetchJson(start: string): Promise<FetchedJson> {
    let url = start;
    for (let hop = 0; hop <= cfg.maxRedirects; hop++) {
      const target = await checkUrl(url, cfg);
      const res = await get(target, cfg);
      if (res.status >= 300 && res.status < 400 && res.location) {
        url = new URL(res.location, url).toString();
        continue;
      }
      if (res.status !== 200) throw failed(`status ${res.status}`, url);
      try {
        return { json: JSON.parse(res.body), ...maxAgeOf(res.cacheControl) };
      } catch (err) {
        throw failed('not JSON', url, err);
      }
    }
    throw failed('too many redirects', start);
  };
}

interface Target {
  url: URL;
  address: string;
  family: 4 | 6;
}

async function checkUrl(raw: string, cfg: FetchConfig): Promise<Target> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw blocked('not a URL', raw);
  }
  if (url.username || url.password) throw blocked('credentials in URL', raw);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw blocked('scheme', raw);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const addresses = isIP(host)
    ? [{ address: host, family: isIP(host) as 4 | 6 }]
    : await lookup(host, { all: true }).catch((err: unknown) => {
        throw failed('DNS', raw, err);
      });
  if (addresses.length === 0) throw failed('DNS', raw);
  for (const a of addresses) {
    const why = addressRefusal(a.address, cfg);
    if (why) throw blocked(why, raw);
  }
  const first = addresses[0]!;
  if (url.protocol === 'http:' && !isLoopback(first.address))
    throw blocked('plain http to a non-loopback host', raw);
  return { url, address: first.address, family: first.family as 4 | 6 };
}

interface RawResponse {
  status: number;
  location?: string;
  cacheControl?: string;
  body: string;
}

function get(target: Target, cfg: FetchConfig): Promise<RawResponse> {
  const mod = target.url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(
      target.url,
      {
        // Connect to the address that was checked, not whatever DNS says next.
        lookup: (_h, opts, cb) => {
          if ((opts as { all?: boolean }).all) cb(null, [{ address: target.address, family: target.family }]);
          else (cb as (e: null, a: string, f: number) => void)(null, target.address, target.family);
        },
        headers: { accept: 'application/json' },
        timeout: cfg.timeoutMs,
        signal: AbortSignal.timeout(cfg.timeoutMs),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > cfg.maxBytes) {
            req.destroy();
            reject(failed('response too large', target.url.toString()));
          } else chunks.push(c);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            ...(typeof res.headers.location === 'string' ? { location: res.headers.location } : {}),
            ...(res.headers['cache-control'] ? { cacheControl: res.headers['cache-control'] } : {}),
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', (err) => reject(failed('read', target.url.toString(), err)));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => reject(failed('request', target.url.toString(), err)));
  });
}

function maxAgeOf(cacheControl: string | undefined): { maxAge?: number } {
  if (!cacheControl) return {};
  if (/\bno-store\b|\bno-cache\b/i.test(cacheControl)) return { maxAge: 0 };
  const m = /\bmax-age=(\d{1,9})\b/i.exec(cacheControl);
  return m ? { maxAge: Number(m[1]) } : {};
}
