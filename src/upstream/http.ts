import http from 'node:http';
import https from 'node:https';
import { urlToHttpOptions } from 'node:url';
import type { HttpUpstreamConfig } from '../config/schema.ts';
import { resolveValue } from '../config/secrets.ts';
import { JSONRPC } from '../errors.ts';
import { upstreamTlsOptions } from '../identity/upstream-tls.ts';
import {
  errorResponse,
  isObject,
  isRequest,
  type JsonRpcId,
  type JsonRpcMessage,
  type JsonRpcRequest,
} from '../jsonrpc.ts';
import type { Logger } from '../observability/log.ts';
import {
  encodeHeaderValue,
  headerArguments,
  nameHeaderParam,
  paramHeaderValues,
} from '../protocol/modern.ts';
import { SseParser } from '../protocol/sse.ts';
import type { Era } from '../protocol/versions.ts';
import { type ParsedBody, parseJsonBody } from './http-body.ts';
import type { EraAware, MessageTransport } from './transport.ts';

const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
const STREAM_RETRY_MAX_MS = 30_000;

export interface HttpUpstreamOptions {
  /** The upstream's name in the config, for logs. */
  name: string;
  url: string;
  headers: Record<string, string>;
  tls?: https.AgentOptions;
  log: Logger;
  /** How long the session's standalone stream may take to open before calls go ahead without it. */
  timeoutMs: number;
}

/**
 * Streamable HTTP to an upstream with keep-alive `node:http` (the SDK's
 * transport rides on `fetch`, which costs several times more CPU per call on
 * this hot path). Speaks whichever era the handshake settled on.
 */
export class HttpUpstreamTransport implements MessageTransport, EraAware {
  onmessage?: ((message: JsonRpcMessage) => void) | undefined;
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onunanswered?: ((id: JsonRpcId) => boolean) | undefined;
  private readonly url: URL;
  /** The URL as request options, worked out once rather than by node:http on every request. */
  private readonly target: http.RequestOptions;
  private readonly headers: Record<string, string>;
  private readonly agent: http.Agent;
  private readonly opts: HttpUpstreamOptions;
  /** The 2025-era session's GET stream: where servers send what belongs to no request. */
  private standalone: http.ClientRequest | undefined;
  private standaloneRetryMs = 1000;
  private era: Era = 'legacy';
  /** Tool name → [argument, header name] pairs marked `x-mcp-header` in its schema. */
  private readonly headerParams = new Map<string, readonly (readonly [string, string])[]>();
  private protocolVersion: string | undefined;
  private sessionId: string | undefined;
  private closed = false;

  constructor(opts: HttpUpstreamOptions) {
    this.opts = opts;
    this.url = new URL(opts.url);
    this.target = urlToHttpOptions(this.url);
    this.headers = opts.headers;
    const Agent = this.url.protocol === 'https:' ? https.Agent : http.Agent;
    this.agent = new Agent({ keepAlive: true, maxSockets: 64, ...opts.tls });
  }

  setEra(era: Era, protocolVersion: string): void {
    this.era = era;
    this.protocolVersion = protocolVersion;
  }

  async start(): Promise<void> {}

  async send(message: JsonRpcMessage, options: { headers?: Record<string, string> } = {}): Promise<void> {
    if (this.closed) throw new Error('transport closed');
    const body = JSON.stringify(message);
    const res = await this.post(body, { ...options.headers, ...this.requestHeaders(message) });
    this.sessionId = (res.headers['mcp-session-id'] as string | undefined) ?? this.sessionId;
    this.consume(res, isRequest(message) ? message : undefined);
    // Open before any call goes out: a server request sent while no stream is open is lost.
    if ('method' in message && message.method === 'notifications/initialized') await this.openStandalone();
  }

  /**
   * A 2025-era session's GET stream carries what the server sends outside any
   * POST: many servers send sampling, elicitation and roots requests there,
   * and list changes. Resolves once it is open, refused, or took too long.
   */
  private openStandalone(): Promise<void> {
    if (this.closed || this.era !== 'legacy' || !this.sessionId) return Promise.resolve();
    const headers = { ...this.baseHeaders(), accept: 'text/event-stream' };
    const mod = this.url.protocol === 'https:' ? https : http;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.opts.log.warn('upstream standalone stream slow to open; calls go ahead without it', {
          upstream: this.opts.name,
        });
        resolve();
      }, this.opts.timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const req = mod.request({ ...this.target, method: 'GET', headers, agent: this.agent }, (res) => {
        done();
        this.readStandalone(res);
      });
      this.standalone = req;
      req.on('error', () => {
        done();
        this.reopenStandalone(req);
      });
      req.end();
    });
  }

  private readStandalone(res: http.IncomingMessage): void {
    const type = String(res.headers['content-type'] ?? '');
    if (res.statusCode !== 200 || !type.startsWith('text/event-stream')) {
      // 405: this server offers no such stream; it then sends everything on POST streams.
      res.resume();
      this.opts.log.debug('upstream has no standalone stream', {
        upstream: this.opts.name,
        status: res.statusCode,
      });
      return;
    }
    this.standaloneRetryMs = 1000;
    res.setEncoding('utf8');
    const x: Exchange = { request: undefined, status: 200, answered: false, problems: [] };
    const parser = new SseParser((data) => this.deliver(parseJsonBody(data), x));
    res.on('data', (c: string) => {
      parser.push(c);
      if (parser.pendingChars > MAX_RESPONSE_BYTES) {
        this.opts.log.warn('upstream stream event too large; the stream is dropped and opened again', {
          upstream: this.opts.name,
        });
        res.destroy(new Error(`event larger than ${MAX_RESPONSE_BYTES} bytes`));
      }
    });
    const req = this.standalone;
    res.on('end', () => this.reopenStandalone(req));
    res.on('error', () => this.reopenStandalone(req));
  }

  /** A stream the server (or a proxy) ended is opened again, waiting longer after each failure. */
  private reopenStandalone(ended: http.ClientRequest | undefined): void {
    if (this.closed || ended !== this.standalone) return;
    this.standalone = undefined;
    const wait = this.standaloneRetryMs;
    this.standaloneRetryMs = Math.min(wait * 2, STREAM_RETRY_MAX_MS);
    setTimeout(() => void this.openStandalone(), wait).unref();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.standalone?.destroy();
    if (this.sessionId && this.era === 'legacy') {
      await this.request('DELETE', undefined, this.baseHeaders())
        .then((r) => r.resume())
        .catch(() => {});
    }
    this.agent.destroy();
  }

  private baseHeaders(): Record<string, string> {
    const h: Record<string, string> = { ...this.headers };
    if (this.protocolVersion) h['mcp-protocol-version'] = this.protocolVersion;
    if (this.sessionId && this.era === 'legacy') h['mcp-session-id'] = this.sessionId;
    return h;
  }

  private requestHeaders(message: JsonRpcMessage): Record<string, string> {
    const h = this.baseHeaders();
    h['content-type'] = 'application/json';
    h.accept = 'application/json, text/event-stream';
    if (this.era === 'modern' && 'method' in message) {
      const method = String(message.method);
      h['mcp-method'] = method;
      const key = nameHeaderParam(method);
      const name = key && isObject(message.params) ? message.params[key] : undefined;
      if (typeof name === 'string') h['mcp-name'] = encodeHeaderValue(name);
      if (method === 'tools/call' && typeof name === 'string')
        Object.assign(h, this.paramHeaders(name, message));
    }
    return h;
  }

  /**
   * `Mcp-Param-*` for the arguments this upstream's own tool schema marks with
   * `x-mcp-header`, derived from the body (a legacy client never sends them).
   */
  private paramHeaders(tool: string, message: JsonRpcMessage): Record<string, string> {
    const args =
      isObject(message.params) && isObject(message.params.arguments) ? message.params.arguments : {};
    return paramHeaderValues(this.headerParams.get(tool) ?? [], args);
  }

  /** Learns, from the tools/list results passing through, which arguments travel as headers. */
  private learnTools(result: unknown): void {
    const tools = isObject(result) && Array.isArray(result.tools) ? result.tools : [];
    for (const tool of tools) {
      if (isObject(tool) && typeof tool.name === 'string')
        this.headerParams.set(tool.name, headerArguments(tool.inputSchema));
    }
  }

  private post(body: string, headers: Record<string, string>): Promise<http.IncomingMessage> {
    return this.request('POST', body, { ...headers, 'content-length': String(Buffer.byteLength(body)) });
  }

  private request(method: string, body: string | undefined, headers: Record<string, string>) {
    const mod = this.url.protocol === 'https:' ? https : http;
    return new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = mod.request({ ...this.target, method, headers, agent: this.agent }, resolve);
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Turns one HTTP response (JSON, SSE or an HTTP error) into messages. */
  private consume(res: http.IncomingMessage, request: JsonRpcRequest | undefined): void {
    const type = String(res.headers['content-type'] ?? '');
    const status = res.statusCode ?? 0;
    if (status === 202 || (status >= 200 && status < 300 && !type && !request)) {
      res.resume();
      return;
    }
    res.setEncoding('utf8');
    const x: Exchange = { request, status, answered: false, problems: [] };
    const deliver = (text: string) => this.deliver(parseJsonBody(text), x);
    let broken: string | undefined;
    res.on('error', (err) => {
      broken = `response broken off: ${err.message}`;
    });
    // Whatever happens to this HTTP exchange, a request gets exactly one answer (never a wait for the timeout).
    if (type.startsWith('text/event-stream') && status < 300) {
      const parser = new SseParser(deliver);
      res.on('data', (c: string) => {
        parser.push(c);
        // One event is held whole until it ends: bounded as a plain JSON body is.
        if (parser.pendingChars > MAX_RESPONSE_BYTES) {
          broken = `event larger than ${MAX_RESPONSE_BYTES} bytes`;
          res.destroy();
        }
      });
      res.on('close', () => this.finish(x, broken ?? 'the event stream ended before the answer'));
      return;
    }
    let text = '';
    res.on('data', (c: string) => {
      text += c;
      if (text.length > MAX_RESPONSE_BYTES) {
        broken = `response larger than ${MAX_RESPONSE_BYTES} bytes`;
        res.destroy();
      }
    });
    res.on('end', () => deliver(text));
    res.on('close', () => this.finish(x, broken));
  }

  private deliver(parsed: ParsedBody, x: Exchange): void {
    if (parsed.problems.length > 0) {
      x.problems.push(...parsed.problems);
      this.opts.log.warn('upstream sent what is not JSON-RPC; that part is dropped', {
        upstream: this.opts.name,
        method: x.request?.method,
        status: x.status,
        problems: parsed.problems,
      });
    }
    for (const m of parsed.messages) this.dispatch(m, x);
  }

  private dispatch(m: JsonRpcMessage, x: Exchange): void {
    const request = x.request;
    if (request && !x.answered && isResponseTo(m, request)) {
      x.answered = true;
      if (request.method === 'tools/list' && 'result' in m) this.learnTools(m.result);
    } else if (request && !x.answered && 'error' in m && m.id === null) {
      x.answered = true; // e.g. 400 "Server not initialized" with id null: it answers this request
      this.onmessage?.({ ...m, id: request.id });
      return;
    }
    this.onmessage?.(m);
  }

  /**
   * A request this exchange did not answer gets an error made up here, and the
   * log says which upstream and why; the connection marks it as no answer.
   */
  private finish(x: Exchange, broken: string | undefined): void {
    const request = x.request;
    if (!request || x.answered) return;
    x.answered = true;
    if (x.status === 404 && this.era === 'legacy') this.sessionId = undefined;
    const causes = [x.status >= 300 ? `HTTP ${x.status}` : undefined, ...x.problems, broken];
    const cause = causes.filter(Boolean).join('; ') || 'no response to this request in the body';
    let awaited = true;
    if (this.onunanswered) awaited = this.onunanswered(request.id);
    else this.onmessage?.(errorResponse(request.id, UNAVAILABLE));
    if (!awaited) return; // cancelled, timed out or closed already: nothing was made up
    this.opts.log.warn('upstream gave no answer; the caller gets an error in its place', {
      upstream: this.opts.name,
      method: request.method,
      status: x.status,
      cause,
    });
  }
}

interface Exchange {
  request: JsonRpcRequest | undefined;
  status: number;
  answered: boolean;
  /** What in the body was not JSON-RPC. */
  problems: string[];
}

const UNAVAILABLE = { code: JSONRPC.UPSTREAM_UNAVAILABLE, message: 'Upstream unavailable' };

const isResponseTo = (m: JsonRpcMessage, request: JsonRpcRequest): boolean =>
  !('method' in m) && m.id === request.id;

export function httpTransport(
  name: string,
  cfg: HttpUpstreamConfig,
  baseDir: string,
  log: Logger,
): HttpUpstreamTransport {
  const headers = Object.fromEntries(
    Object.entries(cfg.headers).map(([k, v]) => [k.toLowerCase(), resolveValue(v, baseDir)]),
  );
  const tls = cfg.mtls ? upstreamTlsOptions(cfg.url, cfg.mtls, baseDir) : {};
  return new HttpUpstreamTransport({ name, url: cfg.url, headers, tls, log, timeoutMs: cfg.timeoutMs });
}
