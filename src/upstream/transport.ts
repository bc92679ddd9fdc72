import type { JsonRpcId, JsonRpcMessage } from '../jsonrpc.ts';
import type { Era } from '../protocol/versions.ts';

/**
 * A message pipe to one upstream server; the SDK's `Transport` shape, so the
 * SDK's stdio transport fits as is.
 */
export interface MessageTransport {
  start(): Promise<void>;
  /** `headers`: extra HTTP headers for this message (ignored by stdio). */
  send(message: JsonRpcMessage, options?: { headers?: Record<string, string> }): Promise<void>;
  close(): Promise<void>;
  onmessage?: ((message: JsonRpcMessage) => void) | undefined;
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  /**
   * A request whose exchange ended with no answer to it (an HTTP body that held
   * none); returns whether it was still awaited. Left unset by transports that cannot tell.
   */
  onunanswered?: ((id: JsonRpcId) => boolean) | undefined;
}

/** Era-dependent knobs a transport needs (HTTP headers, session ids). */
export interface EraAware {
  setEra(era: Era, protocolVersion: string): void;
}
