import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
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
import { HttpDoor } from './http-door.ts';
import {
  accepted,
  acceptsSse,
  header,
  refuse,
  sendJson,
  sendPortcullisError,
  statusFor,
} from './http-reply.ts';
import type { LegacyHttpSession, LegacySessionTable } from './legacy-sessions.ts';

type Headers = IncomingMessage['headers'];

export interface McpHttpHandlerDeps {
  gateway: Gateway;
  listen: Config['listen'];
  limits: Pick<Config['limits'], 'retryAfterSeconds'>;
  log: Logger;
  sessions: LegacySessionTable;
}

/**
 * Streamable HTTP for MCP clients of both eras on one path: legacy clients
 * (initialize, `Mcp-Session-Id`, GET stream) and modern stateless ones
 * (headers mirrored from the body and checked against it).
 */
export class McpHttpHandler {
  readonly #gateway: Gateway;
  readonly #listen: Config['listen'];
  readonly #log: Logger;
  readonly #sessions: LegacySessionTable;
  readonly #door: HttpDoor;
  readonly #retryAfter: string;

  constructor(deps: McpHttpHandlerDeps) {
    this.#gateway = deps.gateway;
    this.#listen = deps.listen;
    this.#log = deps.log;
    this.#sessions = deps.sessions;
    this.#retryAfter = String(deps.limits.retryAfterSeconds);
    this.#door = new HttpDoor({ gateway: deps.gateway, listen: deps.listen, log: deps.log });
  }

  /** The `http.Server` request listener: a handler that fails answers a generic internal error. */
  readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    this.#handle(req, res).catch((err) => {
      this.#log.error('http handler failed', { err: String(err) });
      if (!res.headersSent) sendPortcullisError(res, null, internal(err));
      else res.end();
    });
  };

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const admission = this.#door.rules.admit(req);
    if (admission.kind === 'refused') return refuse(res, admission.code);
    if (admission.kind === 'document') return sendJson(res, 200, admission.doc);
    // Who is calling is settled before anything else is read.
    const principal = await this.#door.authenticate(req, res);
    if (!principal) return;
    if (req.method === 'POST') return this.#handlePost(req, res, principal);
    // No call follows: expiry and revocation are checked here, or nowhere.
    if (!(await this.#door.stillValid(req, res, principal))) return;
    if (req.method === 'GET') return this.#handleGet(req, res, principal);
    if (req.method === 'DELETE') return this.#handleDelete(req, res, principal);
    res.setHeader('allow', 'GET, POST, DELETE');
    return refuse(res, 'ERR_HTTP_METHOD_NOT_ALLOWED');
  }

  /**
   * A call ended by a refused credential answers with its HTTP status and a
   * challenge (401); every other error of a call stays in-band, with the
   * status the response implies. A refusal for capacity is a 503 that says
   * when to come back.
   */
  #finishCall(channel: PostChannel, call: CallResult, fallback = statusFor(call.response)): void {
    const refused = call.error instanceof AuthError ? call.error : undefined;
    const status = refused?.httpStatus ?? fallback;
    const headers: Record<string, string> = status === 503 ? { 'retry-after': this.#retryAfter } : {};
    if (refused) headers['www-authenticate'] = this.#gateway.identity.challenge(refused);
    channel.finish(call.response, status, headers);
  }

  #sendRefusal(res: ServerResponse, id: JsonRpcResponse['id'], err: unknown): void {
    if (err instanceof PortcullisError && err.httpStatus === 503)
      res.setHeader('retry-after', this.#retryAfter);
    sendPortcullisError(res, id, err);
  }

  async #handlePost(req: IncomingMessage, res: ServerResponse, principal: Principal): Promise<void> {
    const type = header(req.headers, 'content-type') ?? '';
    if (!/^application\/json\b/i.test(type)) {
      req.resume();
      return refuse(res, 'ERR_UNSUPPORTED_MEDIA_TYPE');
    }
    let message: JsonRpcMessage;
    try {
      const body = await readBody(req, this.#listen.maxBodyBytes);
      message = parseMessage(body, { maxDepth: this.#listen.maxJsonDepth });
    } catch (err) {
      if (err instanceof PortcullisError) this.#door.recordBodyRefusal(req, err);
      return sendPortcullisError(res, null, err);
    }
    if (!isRequest(message) && !(await this.#door.stillValid(req, res, principal))) return;
    try {
      if (isModernMessage(message, req.headers))
        return await this.#handleModern(message, req, res, principal);
      return await this.#handleLegacy(message, req, res, principal);
    } catch (err) {
      return this.#sendRefusal(
        res,
        'id' in message ? ((message.id as JsonRpcResponse['id']) ?? null) : null,
        err,
      );
    }
  }

  async #handleModern(
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
    const session = newModernSession(message.params, req, principal);
    if (isNotification(message)) {
      accepted(res);
      await this.#gateway.handleNotification(message, session);
      return;
    }
    const request = message as JsonRpcRequest;
    const channel = new PostChannel(res, { acceptsSse: acceptsSse(req) });
    // In this era closing the response stream is how a client cancels.
    res.on('close', () => session.inflight.get(request.id)?.abort());
    const call = await this.#gateway.handleRequest(request, session, channel, {
      requestHeaders: req.headers,
      ...bearerOf(req),
    });
    this.#finishCall(
      channel,
      call,
      call.response.error?.code === JSONRPC.METHOD_NOT_FOUND ? 404 : statusFor(call.response),
    );
  }

  async #handleLegacy(
    message: JsonRpcMessage,
    req: IncomingMessage,
    res: ServerResponse,
    principal: Principal,
  ): Promise<void> {
    if (isRequest(message) && message.method === 'initialize')
      return this.#initialize(message, req, res, principal);
    const entry = this.#lookupSession(req, res, principal);
    if (!entry) return;
    const versionHeader = header(req.headers, 'mcp-protocol-version') ?? DEFAULT_HTTP_LEGACY_VERSION;
    if (!isLegacyVersion(versionHeader))
      return refuse(res, 'ERR_UNSUPPORTED_VERSION_HEADER', { publicArgs: [versionHeader] });
    if (!isRequest(message)) {
      accepted(res);
      if (isNotification(message)) await this.#gateway.handleNotification(message, entry.session);
      else entry.replies.settle(message as JsonRpcResponse);
      return;
    }
    const channel = new PostChannel(res, { acceptsSse: acceptsSse(req), replies: entry.replies });
    this.#finishCall(
      channel,
      await this.#gateway.handleRequest(message, entry.session, channel, bearerOf(req)),
    );
  }

  async #initialize(
    message: JsonRpcRequest,
    req: IncomingMessage,
    res: ServerResponse,
    principal: Principal,
  ): Promise<void> {
    if (header(req.headers, 'mcp-session-id')) return refuse(res, 'ERR_ALREADY_INITIALIZED', {}, message.id);
    const { id, session, replies, stream } = newLegacySession(req, principal, {
      clientStreamWaitMs: this.#listen.clientStreamWaitMs,
      log: this.#log,
    });
    const channel = new PostChannel(res, {
      acceptsSse: acceptsSse(req),
      replies,
      headers: { 'mcp-session-id': id },
    });
    const call = await this.#gateway.handleRequest(message, session, channel, bearerOf(req));
    if (call.response.result) this.#sessions.add({ session, replies, stream });
    else await this.#gateway.closeSession(session);
    this.#finishCall(channel, call);
  }

  #lookupSession(
    req: IncomingMessage,
    res: ServerResponse,
    principal: Principal,
  ): LegacyHttpSession | undefined {
    try {
      return this.#sessions.resolve(header(req.headers, 'mcp-session-id'), principal);
    } catch (err) {
      if (err instanceof PortcullisError && err.code === 'ERR_PRINCIPAL_MISMATCH')
        this.#log.warn('session used by another principal', { code: err.code, session: err.detail.session });
      sendPortcullisError(res, null, err);
      return undefined;
    }
  }

  async #handleGet(req: IncomingMessage, res: ServerResponse, principal: Principal): Promise<void> {
    if (!header(req.headers, 'mcp-session-id')) {
      res.setHeader('allow', 'POST');
      return refuse(res, 'ERR_HTTP_METHOD_NOT_ALLOWED');
    }
    if (!acceptsSse(req)) return refuse(res, 'ERR_NOT_ACCEPTABLE');
    const entry = this.#lookupSession(req, res, principal);
    if (!entry) return;
    if (entry.stream.open) return refuse(res, 'ERR_STREAM_CONFLICT');
    entry.stream.attach(res);
  }

  async #handleDelete(req: IncomingMessage, res: ServerResponse, principal: Principal): Promise<void> {
    if (!header(req.headers, 'mcp-session-id')) {
      res.setHeader('allow', 'POST');
      return refuse(res, 'ERR_HTTP_METHOD_NOT_ALLOWED');
    }
    const entry = this.#lookupSession(req, res, principal);
    if (!entry) return;
    await this.#sessions.end(entry);
    res.writeHead(200).end();
  }
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

/** A modern call's session: it lives for the one request and takes the client from the call's `_meta`. */
function newModernSession(callParams: unknown, req: IncomingMessage, principal: Principal) {
  const params = isObject(callParams) ? callParams : {};
  const meta = isObject(params._meta) ? params._meta : {};
  return newSession({
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
}

/** A new legacy session with its reply book and its (not yet opened) GET stream. */
function newLegacySession(
  req: IncomingMessage,
  principal: Principal,
  opts: { clientStreamWaitMs: number; log: Logger },
) {
  const { log } = opts;
  const id = randomUUID();
  const replies = new ReplyBook();
  const stream = new StandaloneStream(replies, {
    waitMs: opts.clientStreamWaitMs,
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

/**
 * The bearer token of a request the door verified: handed to the call only
 * for a token-exchange backend's subject token.
 */
function bearerOf(req: IncomingMessage): { subjectToken?: string } {
  const m = /^Bearer ([^\s]+)$/i.exec(header(req.headers, 'authorization') ?? '');
  return m?.[1] ? { subjectToken: m[1] } : {};
}
