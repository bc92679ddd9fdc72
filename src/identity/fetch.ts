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

/** A form POSTed to an authorization server (a token or revocation endpoint). */
export interface FormPost {
  readonly form: Readonly<Record<string, string>>;
  /** The `Authorization` header: the client's own credentials. */
  readonly authorization: string;
  /** Ends the request early (a deadline of the caller's, a cancelled call). */
  readonly signal?: AbortSignal;
}

export interface FormAnswer {
  readonly status: number;
  readonly json: unknown;
}

export type FormPoster = (url: string, post: FormPost) => Promise<FormAnswer>;

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
      const res = await send(target, cfg, { method: 'GET', headers: { accept: 'application/json' } });
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

/**
 * POSTs a form and reads its JSON answer under the same guard as
 * `createJsonFetcher`, whatever the status (an OAuth error answer is JSON on
 * 400). A redirect is refused, never followed: the request carries the
 * client's credentials, which must go nowhere but the configured endpoint.
 */
export function createFormPoster(cfg: FetchConfig): FormPoster {
  return async function postForm(url: string, post: FormPost): Promise<FormAnswer> {
    const target = await checkUrl(url, cfg);
    const res = await send(target, cfg, {
      method: 'POST',
      headers: {
        accept: 'application/json',
        'content-type': 'application/x-www-form-urlencoded',
        authorization: post.authorization,
      },
      body: new URLSearchParams(post.form).toString(),
      ...(post.signal ? { signal: post.signal } : {}),
    });
    if (res.status >= 300 && res.status < 400) throw blocked('redirect from a form endpoint', url);
    try {
      return { status: res.status, json: JSON.parse(res.body) };
    } catch (err) {
      throw failed(`not JSON (status ${res.status})`, url, err);
    }
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

interface Outgoing {
  readonly method: 'GET' | 'POST';
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly signal?: AbortSignal;
}

function send(target: Target, cfg: FetchConfig, out: Outgoing): Promise<RawResponse> {
  const mod = target.url.protocol === 'https:' ? https : http;
  const deadline = AbortSignal.timeout(cfg.timeoutMs);
  return new Promise((resolve, reject) => {
    const req = mod.request(
      target.url,
      {
        method: out.method,
        // Connect to the address that was checked, not whatever DNS says next.
        lookup: (_h, opts, cb) => {
          if ((opts as { all?: boolean }).all) cb(null, [{ address: target.address, family: target.family }]);
          else (cb as (e: null, a: string, f: number) => void)(null, target.address, target.family);
        },
        headers:
          out.body === undefined
            ? out.headers
            : { ...out.headers, 'content-length': String(Buffer.byteLength(out.body)) },
        timeout: cfg.timeoutMs,
        signal: out.signal ? AbortSignal.any([deadline, out.signal]) : deadline,
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
    req.end(out.body);
  });
}

function maxAgeOf(cacheControl: string | undefined): { maxAge?: number } {
  if (!cacheControl) return {};
  if (/\bno-store\b|\bno-cache\b/i.test(cacheControl)) return { maxAge: 0 };
  const m = /\bmax-age=(\d{1,9})\b/i.exec(cacheControl);
  return m ? { maxAge: Number(m[1]) } : {};
}
