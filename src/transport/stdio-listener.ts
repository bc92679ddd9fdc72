import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { internal } from '../errors.ts';
import type { Gateway } from '../gateway.ts';
import { ANONYMOUS, type Principal } from '../identity/principal.ts';
import {
  DEFAULT_MAX_JSON_DEPTH,
  errorResponse,
  isNotification,
  isObject,
  isRequest,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
  parseMessage,
} from '../jsonrpc.ts';
import { type Logger, silentLogger } from '../observability/log.ts';
import { claimedVersion } from '../protocol/modern.ts';
import { isLegacyVersion, LATEST_LEGACY, META } from '../protocol/versions.ts';
import { type DownstreamSession, newSession } from '../session.ts';
import type { RelatedSink } from '../upstream/connection.ts';
import { bodyTooLarge } from './body.ts';
import { ReplyBook } from './channel.ts';
import { bodyRefusalReason } from './refusals.ts';

export interface StdioOptions {
  readonly input: Readable;
  readonly output: Writable;
  readonly maxLineBytes: number;
  /** Deepest nesting of arrays and objects in a message. */
  readonly maxDepth?: number;
  readonly principal?: Principal;
  readonly log?: Logger;
}

/** Newline-delimited JSON-RPC on a pair of streams: one local client, as `portcullis wrap` serves it. */
export function serveStdio(gateway: Gateway, opts: StdioOptions): Promise<void> {
  const { input, output, maxLineBytes, principal = ANONYMOUS, log = silentLogger } = opts;
  const limits = { maxDepth: opts.maxDepth ?? DEFAULT_MAX_JSON_DEPTH };
  const replies = new ReplyBook();
  const write = (m: JsonRpcMessage): boolean => output.write(`${JSON.stringify(m)}\n`) || true;
  const sink: RelatedSink = {
    notify: (m: JsonRpcNotification) => void write(m),
    request: (m: JsonRpcRequest, signal?: AbortSignal) => replies.open(m, write, signal),
  };
  const connection = randomUUID();
  let legacy: DownstreamSession | undefined;

  function sessionFor(message: JsonRpcMessage): DownstreamSession {
    const claimed = claimedVersion(message);
    const modern = claimed !== undefined && !(message.method === 'initialize' && isLegacyVersion(claimed));
    if (!modern) {
      legacy ??= newSession({
        id: connection,
        key: `stdio:${connection}`,
        principal,
        era: 'legacy',
        protocolVersion: LATEST_LEGACY,
        unrelated: sink,
      });
      return legacy;
    }
    const meta = (message.params as Record<string, unknown>)._meta as Record<string, unknown>;
    return newSession({
      id: randomUUID(),
      key: `stdio-modern:${connection}`,
      principal,
      era: 'modern',
      protocolVersion: claimed,
      client: {
        capabilities: asObject(meta[META.clientCapabilities]),
        info: asObject(meta[META.clientInfo]),
      },
    });
  }

  async function onLine(line: string): Promise<void> {
    if (line.trim() === '') return;
    let message: JsonRpcMessage;
    try {
      if (Buffer.byteLength(line) > maxLineBytes) throw bodyTooLarge(maxLineBytes);
      message = parseMessage(line, limits);
    } catch (caught) {
      const err = internal(caught);
      const reason = bodyRefusalReason(err);
      log.info('message refused', { code: err.code, reason });
      gateway.audit.recordRefusal({
        remoteAddress: 'stdio',
        httpMethod: '',
        status: 0,
        code: err.code,
        reason,
      });
      write(errorResponse(null, err.toRpcError()));
      return;
    }
    if (isRequest(message)) {
      const { response } = await gateway.handleRequest(message, sessionFor(message), sink);
      write(response);
    } else if (isNotification(message)) {
      await gateway.handleNotification(message, sessionFor(message));
    } else {
      replies.settle(message as JsonRpcResponse);
    }
  }

  return new Promise((resolve) => {
    const rl = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
    rl.on('line', (line) => void onLine(line));
    rl.on('close', async () => {
      replies.failAll();
      if (legacy) await gateway.closeSession(legacy);
      resolve();
    });
  });
}

const asObject = (v: unknown) => (isObject(v) ? v : {});
