import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Config } from '../config/schema.ts';
import { internal, JSONRPC, PortcullisError } from '../errors.ts';
import type { CallResult, Gateway } from '../gateway.ts';
import { AuthError } from '../identity/errors.ts';
import type { Principal } from '../identity/principal.ts';
import {
  isNotification,
  isObject,
  isRequest,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
  parseMessage,
} from '../jsonrpc.ts';
import type { Logger } from '../observability/log.ts';
import { checkModernHeaders, claimedVersion, invalidMeta } from '../protocol/modern.ts';
import { DEFAULT_HTTP_LEGACY_VERSION, isLegacyVersion, isModernVersion, META } from '../protocol/versions.ts';
import { newSession } from '../session.ts';
import { readBody } from './body.ts';
import { PostChannel, ReplyBook, StandaloneStream } from './channel.ts';
import { createRebindingGuard } from './guard.ts';
import {
  accepted,
  acceptsSse,
  header,
  refuse,
  sendJson,
  sendPortcullisError,
  statusFor,
} from './http-reply.ts';
import { type LegacyHttpSession, LegacySessionTable } from './legacy-sessions.ts';
import { bodyRefusalReason } from './refusals.ts';

export interface HttpListener {
  readonly server: http.Server;
  readonly url: string;
  /** Ends every legacy session idle (and without a GET stream) for `listen.sessionIdleMs` as of `at`. */
  sweepSessions(at?: number): Promise<void>;
  close(): Promise<void>;
}

type Headers = IncomingMessage['headers'];

/**
 * Streamable HTTP for MCP clients of both eras on one path: legacy clients
 * (initialize, `Mcp-Session-Id`, GET stream) and modern stateless ones
 * (headers mirrored from the body and checked against it).
 */
export async function startHttpListener(
  config: Config,
  gateway: Gateway,
  log: Logger,
  now: () => number = Date.now,
): Promise<HttpListener> {
  const { listen } = config;
  const guard = createRebindingGuard({
    bindHost: listen.host,
    allowedHosts: listen.allowedHosts,
    allowedOrigins: listen.allowedOrigins,
  });
  const sessions = new LegacySessionTable({
    idleMs: listen.sessionIdleMs,
    close: (session) => gateway.closeSession(session),
    now,
  });
  const retryAfter = { 'retry-after': String(config.limits.retryAfterSeconds) };
  /**
   * A call ended by a refused credential answers with its HTTP status and a
   * challenge (401); every other error of a call stays in-band, with the
   * status the response implies. A refusal for capacity is a 503 that says
   * when to come back.
   */
  const finishCall = (channel: PostChannel, call: CallResult, fallback = statusFor(call.response)) => {
    const refused = call.error instanceof AuthError ? call.error : undefined;
    const status = refused?.httpStatus ?? fallback;
    const headers: Record<string, string> = status === 503 ? { ...retryAfter } : {};
    if (refused) headers['www-authenticate'] = gateway.identity.challenge(refused);
    channel.finish(call.response, status, headers);
  };
  const sendRefusal = (res: ServerResponse, id: JsonRpcResponse['id'], err: unknown) => {
    if (err instanceof PortcullisError && err.httpStatus === 503)
      res.setHeader('retry-after', retryAfter['retry-after']);
    sendPortcullisError(res, id, err);
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err) => {
      log.error('http handler failed', { err: String(err) });
      if (!res.headersSent) sendPortcullisError(res, null, internal(err));
      else res.end();
    });
  };
  // With identity.mtls the listener is HTTPS and requires client certificates (SPIFFE SVIDs).
  const tls = gateway.identity.createServer?.(onRequest);
  const server: http.Server = tls?.server ?? http.createServer(onRequest);
  server.keepAliveTimeout = 65_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!guard.hostAllowed(req.headers.host)) return refuse(res, 'ERR_HOST_FORBIDDEN');
    if (!guard.originAllowed(header(req.headers, 'origin'))) return refuse(res, 'ERR_ORIGIN_FORBIDDEN');
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const doc = req.method === 'GET' ? gateway.identity.wellKnown(path) : undefined;
    if (doc !== undefined) return sendJson(res, 200, doc);
    if (path !== listen.path) return refuse(res, 'ERR_NOT_FOUND');
    // Who is calling is settled before anything else is read.
    const principal = await authenticate(req, res);
    if (!principal) return;
    if (req.method === 'POST') return handlePost(req, res, principal);
    // No call follows: expiry and revocation are checked here, or nowhere.
    if (!(await stillValid(req, res, principal))) return;
    if (req.method === 'GET') return handleGet(req, res, principal);
    if (req.method === 'DELETE') return handleDelete(req, res, principal);
    res.setHeader('allow', 'GET, POST, DELETE');
    return refuse(res, 'ERR_HTTP_METHOD_NOT_ALLOWED');
  }

  /**
   * Verifies the credential. Expiry and revocation are checked again by the
   * identify stage of every call, after the body is read; `stillValid` checks
   * them for what runs no call.
   */
  async function authenticate(req: IncomingMessage, res: ServerResponse): Promise<Principal | undefined> {
    try {
      // Node keeps only the first of repeated Authorization headers: refuse the ambiguity instead.
      if (req.rawHeaders.filter((h, i) => i % 2 === 0 && h.toLowerCase() === 'authorization').length > 1)
        throw new AuthError('bad_request', { why: 'several Authorization headers' });
      const peer = req.socket instanceof TLSSocket ? req.socket.getPeerX509Certificate() : undefined;
      return await gateway.identity.authenticate(header(req.headers, 'authorization'), peer);
    } catch (err) {
      refuseAtDoor(req, res, err);
      return undefined;
    }
  }

  async function stillValid(
    req: IncomingMessage,
    res: ServerResponse,
    principal: Principal,
  ): Promise<boolean> {
    try {
      await gateway.recheck(principal);
      return true;
    } catch (err) {
      refuseAtDoor(req, res, err);
      return false;
    }
  }

  function refuseAtDoor(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    req.resume();
    if (!(err instanceof AuthError)) {
      sendPortcullisError(res, null, err);
      return;
    }
    log.info('request refused', { code: err.code, reason: err.reason });
    gateway.audit.recordRefusal({
      remoteAddress: req.socket.remoteAddress ?? '',
      httpMethod: req.method ?? '',
      status: err.httpStatus,
      code: err.code,
      reason: err.reason,
    });
    res.setHeader('www-authenticate', gateway.identity.challenge(err));
    sendPortcullisError(res, null, err);
  }

  async function handlePost(req: IncomingMessage, res: ServerResponse, principal: Principal): Promise<void> {
    const type = header(req.headers, 'content-type') ?? '';
    if (!/^application\/json\b/i.test(type)) {
      req.resume();
      return refuse(res, 'ERR_UNSUPPORTED_MEDIA_TYPE');
    }
    let message: JsonRpcMessage;
    try {
      message = parseMessage(await readBody(req, listen.maxBodyBytes), { maxDepth: listen.maxJsonDepth });
    } catch (err) {
      if (err instanceof PortcullisError) recordBodyRefusal(req, err);
      return sendPortcullisError(res, null, err);
    }
    if (!isRequest(message) && !(await stillValid(req, res, principal))) return;
    try {
      if (isModernMessage(message, req.headers)) return await handleModern(message, req, res, principal);
      return await handleLegacy(message, req, res, principal);
    } catch (err) {
      return sendRefusal(res, 'id' in message ? ((message.id as JsonRpcResponse['id']) ?? null) : null, err);
    }
  }

  /** A body refused before it became a call is counted with the other refusals at the door. */
  function recordBodyRefusal(req: IncomingMessage, err: PortcullisError): void {
    const reason = bodyRefusalReason(err);
    log.info('request refused', { code: err.code, reason });
    gateway.audit.recordRefusal({
      remoteAddress: req.socket.remoteAddress ?? '',
      httpMethod: req.method ?? '',
      status: err.httpStatus,
      code: err.code,
      reason,
    });
  }

  function isModernMessage(message: JsonRpcMessage, h: Headers): boolean {
    const claimed = claimedVersion(message);
    if (claimed !== undefined) return !(message.method === 'initialize' && isLegacyVersion(claimed));
    const headerVersion = header(h, 'mcp-protocol-version');
    if (headerVersion && isModernVersion(headerVersion) && 'method' in message) {
      throw invalidMeta(`${META.protocolVersion}: missing`);
    }
    return false;
  }

  async function handleModern(
    message: JsonRpcMessage,
    req: IncomingMessage,
    res: ServerResponse,
    principal: Principal,
  ): Promise<void> {
    if (!('method' in message)) return accepted(res); // a stray response: nothing awaits it in this era
    checkModernHeaders(message as JsonRpcMessage & { method: string }, {
      protocolVersion: header(req.headers, 'mcp-protocol-version'),
      method: header(req.headers, 'mcp-method'),
      name: header(req.headers, 'mcp-name'),
    });
    const params = isObject(message.params) ? message.params : {};
    const meta = isObject(params._meta) ? params._meta : {};
    const session = newSession({
      id: randomUUID(),
      key: `modern:${principal.id}`,
      principal,
      remoteAddress: req.socket.remoteAddress,
      era: 'modern',
      protocolVersion: String(meta[META.protocolVersion]),
      client: {
        capabilities: asObject(meta[META.clientCapabilities]),
        info: asObject(meta[META.clientInfo]),
      },
    });
    if (isNotification(message)) {
      accepted(res);
      await gateway.handleNotification(message, session);
      return;
    }
    const request = message as JsonRpcRequest;
    const channel = new PostChannel(res, { acceptsSse: acceptsSse(req) });
    // In this era closing the response stream is how a client cancels.
    res.on('close', () => session.inflight.get(request.id)?.abort());
    const call = await gateway.handleRequest(request, session, channel, { requestHeaders: req.headers });
    finishCall(
      channel,
      call,
      call.response.error?.code === JSONRPC.METHOD_NOT_FOUND ? 404 : statusFor(call.response),
    );
  }

  async function handleLegacy(
    message: JsonRpcMessage,
    req: IncomingMessage,
    res: ServerResponse,
    principal: Principal,
  ): Promise<void> {
    if (isRequest(message) && message.method === 'initialize')
      return initialize(message, req, res, principal);
    const entry = lookupSession(req, res, principal);
    if (!entry) return;
    const versionHeader = header(req.headers, 'mcp-protocol-version') ?? DEFAULT_HTTP_LEGACY_VERSION;
    if (!isLegacyVersion(versionHeader))
      return refuse(res, 'ERR_UNSUPPORTED_VERSION_HEADER', { publicArgs: [versionHeader] });
    if (!isRequest(message)) {
      accepted(res);
      if (isNotification(message)) await gateway.handleNotification(message, entry.session);
      else entry.replies.settle(message as JsonRpcResponse);
      return;
    }
    const channel = new PostChannel(res, { acceptsSse: acceptsSse(req), replies: entry.replies });
    finishCall(channel, await gateway.handleRequest(message, entry.session, channel));
  }

  async function initialize(
    message: JsonRpcRequest,
    req: IncomingMessage,
    res: ServerResponse,
    principal: Principal,
  ): Promise<void> {
    if (header(req.headers, 'mcp-session-id')) return refuse(res, 'ERR_ALREADY_INITIALIZED', {}, message.id);
    const { id, session, replies, stream } = newLegacySession(req, principal, listen.clientStreamWaitMs, log);
    const channel = new PostChannel(res, {
      acceptsSse: acceptsSse(req),
      replies,
      headers: { 'mcp-session-id': id },
    });
    const call = await gateway.handleRequest(message, session, channel);
    if (call.response.result) sessions.add({ session, replies, stream });
    else await gateway.closeSession(session);
    finishCall(channel, call);
  }

  function lookupSession(
    req: IncomingMessage,
    res: ServerResponse,
    principal: Principal,
  ): LegacyHttpSession | undefined {
    try {
      return sessions.resolve(header(req.headers, 'mcp-session-id'), principal);
    } catch (err) {
      if (err instanceof PortcullisError && err.code === 'ERR_PRINCIPAL_MISMATCH')
        log.warn('session used by another principal', { code: err.code, session: err.detail.session });
      sendPortcullisError(res, null, err);
      return undefined;
    }
  }

  async function handleGet(req: IncomingMessage, res: ServerResponse, principal: Principal): Promise<void> {
    if (!header(req.headers, 'mcp-session-id')) {
      res.setHeader('allow', 'POST');
      return refuse(res, 'ERR_HTTP_METHOD_NOT_ALLOWED');
    }
    if (!(header(req.headers, 'accept') ?? '').includes('text/event-stream'))
      return refuse(res, 'ERR_NOT_ACCEPTABLE');
    const entry = lookupSession(req, res, principal);
    if (!entry) return;
    if (entry.stream.open) return refuse(res, 'ERR_STREAM_CONFLICT');
    entry.stream.attach(res);
  }

  async function handleDelete(
    req: IncomingMessage,
    res: ServerResponse,
    principal: Principal,
  ): Promise<void> {
    if (!header(req.headers, 'mcp-session-id')) {
      res.setHeader('allow', 'POST');
      return refuse(res, 'ERR_HTTP_METHOD_NOT_ALLOWED');
    }
    const entry = lookupSession(req, res, principal);
    if (!entry) return;
    await sessions.end(entry);
    res.writeHead(200).end();
  }

  const sweepSessions = (at?: number): Promise<void> => sessions.sweep(at);
  const sweeper = setInterval(() => void sweepSessions(), Math.min(listen.sessionIdleMs, 60_000));
  sweeper.unref();

  const origin = await listenAt(server, listen, { tls: tls !== undefined });
  return {
    server,
    url: `${origin}${listen.path}`,
    sweepSessions,
    async close() {
      clearInterval(sweeper);
      tls?.stop();
      await sessions.closeAll();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Starts listening; resolves with the origin (scheme, host and port) clients reach. */
async function listenAt(
  server: http.Server,
  listen: Config['listen'],
  opts: { tls: boolean },
): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return `${opts.tls ? 'https' : 'http'}://${host}:${addr.port}`;
}

/** A new legacy session with its reply book and its (not yet opened) GET stream. */
function newLegacySession(
  req: IncomingMessage,
  principal: Principal,
  clientStreamWaitMs: number,
  log: Logger,
) {
  const id = randomUUID();
  const replies = new ReplyBook();
  const stream = new StandaloneStream(replies, {
    waitMs: clientStreamWaitMs,
    onHeld: (method) => log.info('server request held for the client stream', { session: id, method }),
    onGaveUp: (method) =>
      log.warn('server request failed: no client stream', {
        code: 'ERR_CLIENT_STREAM_UNAVAILABLE',
        session: id,
        method,
      }),
  });
  const session = newSession({
    id,
    key: `legacy:${id}`,
    principal,
    remoteAddress: req.socket.remoteAddress,
    era: 'legacy',
    protocolVersion: DEFAULT_HTTP_LEGACY_VERSION,
    unrelated: stream,
  });
  return { id, session, replies, stream };
}

const asObject = (v: unknown) => (isObject(v) ? v : {});
