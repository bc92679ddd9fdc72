import type { ServerResponse } from 'node:http';
import { clientStreamUnavailable, JSONRPC } from '../errors.ts';
import {
  errorResponse,
  type JsonRpcId,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '../jsonrpc.ts';
import { sseEvent } from '../protocol/sse.ts';
import type { RelatedSink } from '../upstream/connection.ts';

/** Server-to-client requests awaiting the client's answer, per downstream session. */
export class ReplyBook {
  private next = 1;
  private readonly waiting = new Map<JsonRpcId, (r: JsonRpcResponse) => void>();

  /**
   * Gives `message` an id of ours and resolves when the client answers it; if
   * `signal` aborts first, the client is told the request is cancelled and
   * nothing waits for its answer any more.
   */
  open(
    message: JsonRpcRequest,
    send: (m: JsonRpcMessage) => boolean,
    signal?: AbortSignal,
  ): Promise<JsonRpcResponse> {
    const id = `pc-${this.next++}`;
    return new Promise((resolve) => {
      const cancel = () => {
        if (!this.waiting.delete(id)) return;
        send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id } });
        resolve(errorResponse(id, { code: JSONRPC.INTERNAL_ERROR, message: 'Request cancelled' }));
      };
      this.waiting.set(id, (response) => {
        signal?.removeEventListener('abort', cancel);
        resolve(response);
      });
      if (!send({ ...message, id })) {
        this.waiting.delete(id);
        resolve(errorResponse(id, { code: JSONRPC.INTERNAL_ERROR, message: 'Client stream unavailable' }));
        return;
      }
      if (signal?.aborted) cancel();
      else signal?.addEventListener('abort', cancel, { once: true });
    });
  }

  /** True when `response` answered one of ours. */
  settle(response: JsonRpcResponse): boolean {
    const id = response.id;
    const resolve = id === null ? undefined : this.waiting.get(id);
    if (!resolve || id === null) return false;
    this.waiting.delete(id);
    resolve(response);
    return true;
  }

  failAll(): void {
    for (const [id, resolve] of this.waiting) {
      resolve(errorResponse(id, { code: JSONRPC.INTERNAL_ERROR, message: 'Session closed' }));
    }
    this.waiting.clear();
  }
}

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
};

/**
 * The answer to one POSTed request: plain JSON if nothing else needs saying,
 * switching to an SSE stream as soon as progress or a server request must go
 * out before the response.
 */
export class PostChannel implements RelatedSink {
  private readonly res: ServerResponse;
  private readonly acceptsSse: boolean;
  private readonly replies: ReplyBook | undefined;
  private readonly extraHeaders: Record<string, string>;
  private streaming = false;

  constructor(
    res: ServerResponse,
    opts: { acceptsSse: boolean; replies?: ReplyBook; headers?: Record<string, string> },
  ) {
    this.res = res;
    this.acceptsSse = opts.acceptsSse;
    this.replies = opts.replies;
    this.extraHeaders = opts.headers ?? {};
  }

  notify(message: JsonRpcNotification): void {
    this.write(message);
  }

  request(message: JsonRpcRequest, signal?: AbortSignal): Promise<JsonRpcResponse> {
    if (!this.replies) {
      // Modern clients take no server-to-client requests (MRTR replaces them).
      return Promise.resolve(
        errorResponse(message.id, { code: JSONRPC.METHOD_NOT_FOUND, message: 'Client takes no requests' }),
      );
    }
    return this.replies.open(message, (m) => this.write(m), signal);
  }

  keepAlive(): void {
    if (!this.acceptsSse || this.res.writableEnded || this.res.destroyed) return;
    this.startStream();
    this.res.write(': keep-alive\n\n');
  }

  finish(response: JsonRpcResponse, status = 200, headers: Record<string, string> = {}): void {
    if (this.res.writableEnded || this.res.destroyed) return;
    if (this.streaming) {
      this.res.end(sseEvent(JSON.stringify(response)));
      return;
    }
    const body = JSON.stringify(response);
    this.res.writeHead(status, {
      ...this.extraHeaders,
      ...headers,
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    });
    this.res.end(body);
  }

  private write(message: JsonRpcMessage): boolean {
    if (!this.acceptsSse || this.res.writableEnded || this.res.destroyed) return false;
    this.startStream();
    this.res.write(sseEvent(JSON.stringify(message)));
    return true;
  }

  private startStream(): void {
    if (this.streaming) return;
    this.streaming = true;
    this.res.writeHead(200, { ...this.extraHeaders, ...SSE_HEADERS });
  }
}

/** A server-to-client request waiting for the client to open its GET stream. */
interface Held {
  release(): void;
  fail(response: JsonRpcResponse): void;
}

export interface StandaloneStreamOptions {
  /** How long a request waits for a stream to open before it fails (ERR_CLIENT_STREAM_UNAVAILABLE). */
  waitMs: number;
  /** Told when a request starts waiting, and when one gave up waiting (for the log). */
  onHeld?: (method: string) => void;
  onGaveUp?: (method: string) => void;
}

/**
 * The legacy standalone GET stream: messages that belong to no request. A
 * server-to-client request sent while no stream is open (an upstream's
 * `roots/list` right after `initialize`, before the client could open one)
 * waits up to `waitMs` for a stream, then fails with a clear error.
 */
export class StandaloneStream implements RelatedSink {
  private res: ServerResponse | undefined;
  private readonly replies: ReplyBook;
  private readonly opts: StandaloneStreamOptions;
  private readonly held = new Set<Held>();

  constructor(replies: ReplyBook, opts: StandaloneStreamOptions) {
    this.replies = replies;
    this.opts = opts;
  }

  get open(): boolean {
    return this.res !== undefined && !this.res.writableEnded && !this.res.destroyed;
  }

  /** Requests waiting for a stream to open. */
  get waiting(): number {
    return this.held.size;
  }

  attach(res: ServerResponse): void {
    this.res = res;
    res.writeHead(200, SSE_HEADERS);
    res.flushHeaders();
    res.on('close', () => {
      if (this.res === res) this.res = undefined;
    });
    for (const h of [...this.held]) h.release();
  }

  notify(message: JsonRpcNotification): void {
    this.write(message);
  }

  request(message: JsonRpcRequest, signal?: AbortSignal): Promise<JsonRpcResponse> {
    if (this.open || signal?.aborted) return this.send(message, signal);
    return this.hold(message, signal);
  }

  close(): void {
    this.res?.end();
    this.res = undefined;
    for (const h of [...this.held])
      h.fail(errorResponse(null, { code: JSONRPC.INTERNAL_ERROR, message: 'Session closed' }));
  }

  private send(message: JsonRpcRequest, signal?: AbortSignal): Promise<JsonRpcResponse> {
    return this.replies.open(message, (m) => this.write(m), signal);
  }

  private hold(message: JsonRpcRequest, signal?: AbortSignal): Promise<JsonRpcResponse> {
    return new Promise((resolve) => {
      const done = () => {
        this.held.delete(entry);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const entry: Held = {
        release: () => {
          done();
          resolve(this.send(message, signal));
        },
        fail: (response) => {
          done();
          resolve({ ...response, id: message.id });
        },
      };
      const timer = setTimeout(() => {
        entry.fail(errorResponse(message.id, clientStreamUnavailable(this.opts.waitMs).toRpcError()));
        this.opts.onGaveUp?.(message.method);
      }, this.opts.waitMs);
      const onAbort = () =>
        entry.fail(errorResponse(message.id, { code: JSONRPC.INTERNAL_ERROR, message: 'Request cancelled' }));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.held.add(entry);
      this.opts.onHeld?.(message.method);
    });
  }

  private write(message: JsonRpcMessage): boolean {
    if (!this.open) return false;
    this.res!.write(sseEvent(JSON.stringify(message)));
    return true;
  }
}
