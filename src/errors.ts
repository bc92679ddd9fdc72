/**
 * Every error Portcullis raises on purpose, with a stable string `code`.
 * Only `publicMessage` and `rpcCode` ever reach the wire; `message` and `detail`
 * go to logs and the audit record.
 */

export const JSONRPC = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  /** Gateway-level denial (policy, identity, unknown target). */
  DENIED: -32001,
  /** Upstream failed, hung or is unavailable. */
  UPSTREAM_UNAVAILABLE: -32002,
  /** A cap on sessions or upstream instances is reached; try again later (HTTP 503). */
  OVERLOADED: -32003,
  HEADER_MISMATCH: -32020,
  MISSING_CAPABILITY: -32021,
  UNSUPPORTED_VERSION: -32022,
} as const;

export type ErrorCode =
  | 'ERR_CONFIG_INVALID'
  | 'ERR_CONFIG_UNREADABLE'
  | 'ERR_SECRET_UNRESOLVED'
  | 'ERR_USAGE'
  | 'ERR_PARSE'
  | 'ERR_INVALID_REQUEST'
  | 'ERR_BODY_TOO_LARGE'
  | 'ERR_HEADER_MISMATCH'
  | 'ERR_UNSUPPORTED_VERSION'
  | 'ERR_ORIGIN_FORBIDDEN'
  | 'ERR_HOST_FORBIDDEN'
  | 'ERR_SESSION_REQUIRED'
  | 'ERR_SESSION_UNKNOWN'
  | 'ERR_METHOD_NOT_FOUND'
  | 'ERR_UNKNOWN_TARGET'
  | 'ERR_NAME_COLLISION'
  | 'ERR_UPSTREAM_TIMEOUT'
  | 'ERR_UPSTREAM_UNAVAILABLE'
  | 'ERR_UPSTREAM_PROTOCOL'
  | 'ERR_CAPACITY'
  | 'ERR_CLIENT_STREAM_UNAVAILABLE'
  | 'ERR_STAGE_REENTERED'
  | 'ERR_AUTH_REQUIRED'
  | 'ERR_AUTH_INVALID'
  | 'ERR_AUTH_MALFORMED'
  | 'ERR_AUTH_INSUFFICIENT_SCOPE'
  | 'ERR_TOKEN_REVOKED'
  | 'ERR_TOKEN_EXPIRED'
  | 'ERR_PRINCIPAL_MISMATCH'
  | 'ERR_TOOL_NOT_ALLOWED'
  | 'ERR_FETCH_BLOCKED'
  | 'ERR_FETCH_FAILED'
  | 'ERR_KEYS_UNAVAILABLE'
  | 'ERR_STATE_UNAVAILABLE'
  | 'ERR_AUDIT_UNAVAILABLE'
  | 'ERR_AUDIT_KEY_INVALID'
  | 'ERR_AUDIT_NOTE_INVALID'
  | 'ERR_AUDIT_SIGNATURE_INVALID'
  | 'ERR_AUDIT_NOT_JSON'
  | 'ERR_AUDIT_INCONSISTENT'
  | 'ERR_AUDIT_TAMPERED'
  | 'ERR_AUDIT_STORE_LOST'
  | 'ERR_AUDIT_PROOF_INVALID'
  | 'ERR_POLICY_DENIED'
  | 'ERR_POLICY_ENGINE'
  | 'ERR_POLICY_INVALID'
  | 'ERR_OBLIGATION_UNMET'
  | 'ERR_SESSION_HISTORY_FULL'
  | 'ERR_CALLER_HISTORY_FULL'
  | 'ERR_INVALID_ARGUMENTS'
  | 'ERR_INTERNAL';

export interface ErrorInit {
  /** Safe text for the caller; never names upstreams, paths or secrets. */
  publicMessage?: string;
  rpcCode?: number;
  httpStatus?: number;
  detail?: Record<string, unknown>;
  /** Structured `error.data` that is safe for the caller to see. */
  publicData?: unknown;
  cause?: unknown;
}

export class PortcullisError extends Error {
  readonly code: ErrorCode;
  readonly publicMessage: string;
  readonly rpcCode: number;
  readonly httpStatus: number;
  readonly detail: Record<string, unknown>;
  readonly publicData: unknown;

  constructor(code: ErrorCode, message: string, init: ErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.code = code;
    this.publicMessage = init.publicMessage ?? 'Request failed';
    this.rpcCode = init.rpcCode ?? JSONRPC.INTERNAL_ERROR;
    this.httpStatus = init.httpStatus ?? 200;
    this.detail = init.detail ?? {};
    this.publicData = init.publicData;
  }

  /** The JSON-RPC error object the caller may see. */
  toRpcError(): { code: number; message: string; data?: unknown } {
    return {
      code: this.rpcCode,
      message: this.publicMessage,
      ...(this.publicData === undefined ? {} : { data: this.publicData }),
    };
  }
}

export class ConfigError extends PortcullisError {
  readonly issues: readonly { path: string; message: string }[];
  constructor(message: string, issues: readonly { path: string; message: string }[] = [], cause?: unknown) {
    super('ERR_CONFIG_INVALID', message, { cause });
    this.issues = issues;
  }
}

export class UsageError extends PortcullisError {
  constructor(message: string) {
    super('ERR_USAGE', message);
  }
}

export class ProtocolError extends PortcullisError {}

/** A typed end to a call decided by a stage: the caller learns only `publicMessage`. */
export class Denial extends PortcullisError {}

export class UpstreamError extends PortcullisError {}

export const parseError = (detail: string): ProtocolError =>
  new ProtocolError('ERR_PARSE', `Malformed JSON: ${detail}`, {
    publicMessage: 'Parse error',
    rpcCode: JSONRPC.PARSE_ERROR,
    httpStatus: 400,
  });

export const invalidRequest = (detail: string, logDetail?: Record<string, unknown>): ProtocolError =>
  new ProtocolError('ERR_INVALID_REQUEST', `Invalid JSON-RPC message: ${detail}`, {
    publicMessage: 'Invalid Request',
    rpcCode: JSONRPC.INVALID_REQUEST,
    httpStatus: 400,
    ...(logDetail ? { detail: logDetail } : {}),
  });

export const unknownTarget = (kind: string, name: string): Denial =>
  new Denial('ERR_UNKNOWN_TARGET', `No ${kind} named ${JSON.stringify(name)}`, {
    // The same text for "does not exist" and "exists but hidden or unroutable".
    publicMessage: `Unknown ${kind}`,
    rpcCode: JSONRPC.INVALID_PARAMS,
  });

export const methodNotFound = (method: string): Denial =>
  new Denial('ERR_METHOD_NOT_FOUND', `Method not found: ${method}`, {
    publicMessage: 'Method not found',
    rpcCode: JSONRPC.METHOD_NOT_FOUND,
  });

/** A cap is reached: refused before anything is spawned or held. `detail` says which cap, for the log. */
export const overCapacity = (detail: string): Denial =>
  new Denial('ERR_CAPACITY', `Over capacity: ${detail}`, {
    publicMessage: 'Server busy, try again later',
    rpcCode: JSONRPC.OVERLOADED,
    httpStatus: 503,
  });

/** A server-to-client request found no client stream to go out on, not even after waiting for one. */
export const clientStreamUnavailable = (waitedMs: number): ProtocolError =>
  new ProtocolError('ERR_CLIENT_STREAM_UNAVAILABLE', `no client stream opened within ${waitedMs} ms`, {
    publicMessage: 'Client stream unavailable: the client opened no GET stream to receive this request',
    rpcCode: JSONRPC.INTERNAL_ERROR,
    publicData: { reason: 'client_stream_unavailable' },
  });

export const internal = (cause: unknown): PortcullisError =>
  cause instanceof PortcullisError
    ? cause
    : new PortcullisError('ERR_INTERNAL', cause instanceof Error ? cause.message : String(cause), {
        publicMessage: 'Internal error',
        rpcCode: JSONRPC.INTERNAL_ERROR,
        cause,
      });
