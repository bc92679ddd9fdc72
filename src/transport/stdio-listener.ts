import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { PortcullisError } from '../errors.ts';
import type { Gateway } from '../gateway.ts';
import { ANONYMOUS, type Principal } from '../identity/principal.ts';
import {
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
import { claimedVersion } from '../protocol/modern.ts';
import { isLegacyVersion, LATEST_LEGACY, META } from '../protocol/versions.ts';
import { type DownstreamSession, newSession } from '../session.ts';
import type { RelatedSink } from '../upstream/connection.ts';
import { ReplyBook } from './channel.ts';

/** Newline-delimited JSON-RPC on a pair of streams: one local client, as `portcullis wrap` serves it. */
export function serveStdio(
  gateway: Gateway,
  input: Readable,
  output: Writable,
  maxLineBytes: number,
  principal: Principal = ANONYMOUS,
): Promise<void> {
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
      if (Buffer.byteLength(line) > maxLineBytes) throw new Error('message too large');
      message = parseMessage(line);
    } catch (err) {
      const e =
        err instanceof PortcullisError ? err.toRpcError() : { code: -32600, message: 'Message too large' };
      write(errorResponse(null, e));
      return;
    }
    if (isRequest(message)) {
      const response = await gateway.handleRequest(message, sessionFor(message), sink);
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
