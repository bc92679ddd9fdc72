/**
 * Every error Portcullis raises on purpose, with a stable string `code`.
 * `ERRORS` is the one table of what each code means on the wire: its JSON-RPC
 * code, its HTTP status and its public message. Throw sites name a code and
 * add internal detail; only the table's message (with any `publicArgs`) and
 * `publicData` ever reach the caller.
 */

export const JSONRPC = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  /** What the SDK's reference server answers for a refusal at the HTTP transport (bad method, headers, media type). */
  TRANSPORT_REFUSED: -32000,
  /** What the SDK's reference server answers, with HTTP 404, for an unknown `Mcp-Session-Id`. */
  SESSION_NOT_FOUND: -32001,
  /** Upstream failed, hung or is unavailable. */
  UPSTREAM_UNAVAILABLE: -32002,
  /** A cap on sessions or upstream instances is reached; try again later (HTTP 503). */
  OVERLOADED: -32003,
  /** Gateway-level denial (policy, identity, audit): distinct from the SDK's session-not-found. */
  DENIED: -32004,
  HEADER_MISMATCH: -32020,
  MISSING_CAPABILITY: -32021,
  UNSUPPORTED_VERSION: -32022,
} as const;

export interface ErrorSpec {
  readonly rpc: number;
  /** The status when the error ends an HTTP exchange; an error answered inside a call stays in-band. */
  readonly http: number;
  /** Safe text for the caller; `%s` takes the throw site's `publicArgs` in order. */
  readonly public: string;
}

const INTERNAL = { rpc: JSONRPC.INTERNAL_ERROR, http: 500, public: 'Internal error' } as const;
const UNAUTHORIZED = { rpc: JSONRPC.DENIED, http: 401, public: 'Unauthorized' } as const;

export const ERRORS = {
  ERR_CONFIG_INVALID: INTERNAL,
  ERR_CONFIG_UNREADABLE: INTERNAL,
  ERR_SECRET_UNRESOLVED: INTERNAL,
  ERR_USAGE: INTERNAL,
  ERR_PARSE: { rpc: JSONRPC.PARSE_ERROR, http: 400, public: 'Parse error' },
  ERR_INVALID_REQUEST: { rpc: JSONRPC.INVALID_REQUEST, http: 400, public: 'Invalid Request' },
  ERR_INVALID_PARAMS: { rpc: JSONRPC.INVALID_PARAMS, http: 400, public: 'Invalid params: %s' },
  ERR_INVALID_ARGUMENTS: { rpc: JSONRPC.INVALID_PARAMS, http: 400, public: 'Invalid params: %s' },
  ERR_INVALID_CURSOR: { rpc: JSONRPC.INVALID_PARAMS, http: 400, public: 'Invalid cursor' },
  ERR_INVALID_META: {
    rpc: JSONRPC.INVALID_PARAMS,
    http: 400,
    public: 'Invalid _meta envelope for protocol revision 2026-07-28: %s',
  },
  ERR_BODY_TOO_LARGE: { rpc: JSONRPC.INVALID_REQUEST, http: 413, public: 'Request body too large' },
  ERR_HEADER_MISMATCH: {
    rpc: JSONRPC.HEADER_MISMATCH,
    http: 400,
    public: 'Bad Request: the request headers and body disagree (%s)',
  },
  ERR_UNSUPPORTED_VERSION: {
    rpc: JSONRPC.UNSUPPORTED_VERSION,
    http: 400,
    public: 'Unsupported protocol version: %s',
  },
  ERR_UNSUPPORTED_VERSION_HEADER: {
    rpc: JSONRPC.TRANSPORT_REFUSED,
    http: 400,
    public: 'Bad Request: Unsupported protocol version: %s',
  },
  ERR_ORIGIN_FORBIDDEN: {
    rpc: JSONRPC.TRANSPORT_REFUSED,
    http: 403,
    public: 'Forbidden: Origin not allowed',
  },
  ERR_HOST_FORBIDDEN: { rpc: JSONRPC.TRANSPORT_REFUSED, http: 403, public: 'Forbidden: Host not allowed' },
  ERR_NOT_FOUND: { rpc: JSONRPC.INVALID_REQUEST, http: 404, public: 'Not found' },
  ERR_HTTP_METHOD_NOT_ALLOWED: { rpc: JSONRPC.TRANSPORT_REFUSED, http: 405, public: 'Method not allowed.' },
  ERR_NOT_ACCEPTABLE: {
    rpc: JSONRPC.TRANSPORT_REFUSED,
    http: 406,
    public: 'Not Acceptable: Client must accept text/event-stream',
  },
  ERR_STREAM_CONFLICT: {
    rpc: JSONRPC.TRANSPORT_REFUSED,
    http: 409,
    public: 'Conflict: Only one SSE stream is allowed per session',
  },
  ERR_UNSUPPORTED_MEDIA_TYPE: {
    rpc: JSONRPC.TRANSPORT_REFUSED,
    http: 415,
    public: 'Unsupported Media Type: Content-Type must be application/json',
  },
  ERR_ALREADY_INITIALIZED: {
    rpc: JSONRPC.INVALID_REQUEST,
    http: 400,
    public: 'Invalid Request: Server already initialized',
  },
  ERR_SESSION_REQUIRED: {
    rpc: JSONRPC.TRANSPORT_REFUSED,
    http: 400,
    public: 'Bad Request: Mcp-Session-Id header is required',
  },
  ERR_SESSION_UNKNOWN: { rpc: JSONRPC.SESSION_NOT_FOUND, http: 404, public: 'Session not found' },
  ERR_SESSION_CLOSED: { rpc: JSONRPC.UPSTREAM_UNAVAILABLE, http: 404, public: 'Session closed' },
  ERR_PRINCIPAL_MISMATCH: { rpc: JSONRPC.DENIED, http: 403, public: 'Forbidden' },
  ERR_METHOD_NOT_FOUND: { rpc: JSONRPC.METHOD_NOT_FOUND, http: 404, public: 'Method not found' },
  ERR_UNKNOWN_TARGET: { rpc: JSONRPC.INVALID_PARAMS, http: 400, public: 'Unknown %s' },
  ERR_UPSTREAM_UNAVAILABLE: { rpc: JSONRPC.UPSTREAM_UNAVAILABLE, http: 502, public: 'Upstream unavailable' },
  ERR_UPSTREAM_PROTOCOL: { rpc: JSONRPC.UPSTREAM_UNAVAILABLE, http: 502, public: 'Upstream unavailable' },
  ERR_SANDBOX_UNAVAILABLE: { rpc: JSONRPC.UPSTREAM_UNAVAILABLE, http: 502, public: 'Upstream unavailable' },
  ERR_CAPACITY: { rpc: JSONRPC.OVERLOADED, http: 503, public: 'Server busy, try again later' },
  ERR_CLIENT_STREAM_UNAVAILABLE: {
    rpc: JSONRPC.INTERNAL_ERROR,
    http: 500,
    public: 'Client stream unavailable: the client opened no GET stream to receive this request',
  },
  ERR_AUTH_REQUIRED: UNAUTHORIZED,
  ERR_AUTH_INVALID: UNAUTHORIZED,
  ERR_AUTH_MALFORMED: { rpc: JSONRPC.DENIED, http: 400, public: 'Unauthorized' },
  ERR_AUTH_INSUFFICIENT_SCOPE: { rpc: JSONRPC.DENIED, http: 403, public: 'Insufficient scope' },
  ERR_TOKEN_REVOKED: UNAUTHORIZED,
  ERR_TOKEN_EXPIRED: UNAUTHORIZED,
  ERR_FETCH_BLOCKED: { rpc: JSONRPC.INTERNAL_ERROR, http: 502, public: 'Internal error' },
  ERR_FETCH_FAILED: { rpc: JSONRPC.INTERNAL_ERROR, http: 502, public: 'Internal error' },
  ERR_TOKEN_EXCHANGE_UNAVAILABLE: {
    rpc: JSONRPC.DENIED,
    http: 503,
    public: 'Denied: no credential for this upstream is available',
  },
  ERR_TOKEN_EXCHANGE_DENIED: {
    rpc: JSONRPC.DENIED,
    http: 403,
    public: 'Denied: no credential for this upstream is available',
  },
  ERR_TOKEN_EXCHANGE_INVALID: {
    rpc: JSONRPC.DENIED,
    http: 502,
    public: 'Denied: no credential for this upstream is available',
  },
  ERR_KEYS_UNAVAILABLE: { rpc: JSONRPC.INTERNAL_ERROR, http: 503, public: 'Service unavailable' },
  ERR_STATE_UNAVAILABLE: { rpc: JSONRPC.DENIED, http: 503, public: 'Service unavailable' },
  ERR_STATE_RECORD_TOO_LARGE: { rpc: JSONRPC.DENIED, http: 413, public: 'Denied: too large to hold' },
  ERR_AUDIT_UNAVAILABLE: { rpc: JSONRPC.DENIED, http: 503, public: 'Request denied' },
  ERR_AUDIT_KEY_INVALID: INTERNAL,
  ERR_AUDIT_NOTE_INVALID: INTERNAL,
  ERR_AUDIT_SIGNATURE_INVALID: INTERNAL,
  ERR_AUDIT_NOT_JSON: INTERNAL,
  ERR_AUDIT_INCONSISTENT: INTERNAL,
  ERR_AUDIT_TAMPERED: INTERNAL,
  ERR_AUDIT_STORE_LOST: INTERNAL,
  ERR_AUDIT_PROOF_INVALID: INTERNAL,
  ERR_POLICY_DENIED: { rpc: JSONRPC.DENIED, http: 403, public: 'Denied by policy' },
  ERR_POLICY_ENGINE: { rpc: JSONRPC.DENIED, http: 500, public: 'Denied' },
  ERR_POLICY_INVALID: { rpc: JSONRPC.DENIED, http: 500, public: 'Denied' },
  ERR_OBLIGATION_UNMET: {
    rpc: JSONRPC.DENIED,
    http: 403,
    public: 'Denied: a required safeguard is not available',
  },
  ERR_APPROVAL_REQUIRED: { rpc: JSONRPC.DENIED, http: 403, public: 'Approval required' },
  ERR_APPROVAL_PENDING: {
    rpc: JSONRPC.DENIED,
    http: 403,
    public: 'Approval pending: retry the identical call once it is approved',
  },
  ERR_APPROVAL_DENIED: { rpc: JSONRPC.DENIED, http: 403, public: 'Denied by an approver' },
  ERR_APPROVAL_EXPIRED: { rpc: JSONRPC.DENIED, http: 403, public: 'Approval expired' },
  ERR_APPROVAL_ABANDONED: { rpc: JSONRPC.DENIED, http: 503, public: 'Approval abandoned: try again later' },
  ERR_APPROVALS_BUSY: { rpc: JSONRPC.DENIED, http: 429, public: 'Too many calls waiting for approval' },
  ERR_APPROVAL_UNKNOWN: { rpc: JSONRPC.DENIED, http: 404, public: 'Unknown approval' },
  ERR_APPROVAL_NOT_PENDING: { rpc: JSONRPC.DENIED, http: 409, public: 'The approval is not pending' },
  ERR_APPROVAL_SELF: { rpc: JSONRPC.DENIED, http: 403, public: 'Approvers cannot decide their own calls' },
  ERR_APPROVAL_DUPLICATE: { rpc: JSONRPC.DENIED, http: 409, public: 'This approver already approved' },
  ERR_APPROVAL_MISMATCH: { rpc: JSONRPC.DENIED, http: 409, public: 'The approval does not match the call' },
  ERR_APPROVER_NOT_ALLOWED: { rpc: JSONRPC.DENIED, http: 403, public: 'Not an approver' },
  ERR_BREAKGLASS_SCOPE: { rpc: JSONRPC.INVALID_PARAMS, http: 400, public: 'Invalid break-glass scope' },
  ERR_BREAKGLASS_TTL: { rpc: JSONRPC.INVALID_PARAMS, http: 400, public: 'Invalid break-glass duration' },
  ERR_BREAKGLASS_UNKNOWN: { rpc: JSONRPC.DENIED, http: 404, public: 'Unknown break-glass window' },
  ERR_BREAKGLASS_NOT_PENDING: {
    rpc: JSONRPC.DENIED,
    http: 409,
    public: 'The break-glass window is not awaiting approval',
  },
  ERR_BREAKGLASS_ENDED: { rpc: JSONRPC.DENIED, http: 409, public: 'The break-glass window has ended' },
  ERR_BREAKGLASS_SELF: {
    rpc: JSONRPC.DENIED,
    http: 403,
    public: 'Whoever asked for a break-glass window cannot approve it',
  },
  ERR_PIN_UNKNOWN: { rpc: JSONRPC.DENIED, http: 404, public: 'Unknown tool pin' },
  ERR_PIN_NOT_QUARANTINED: { rpc: JSONRPC.DENIED, http: 409, public: 'The tool is not quarantined' },
  ERR_PIN_ALREADY_QUARANTINED: { rpc: JSONRPC.DENIED, http: 409, public: 'The tool is already quarantined' },
  ERR_SERVER_PIN_MISMATCH: {
    rpc: JSONRPC.UPSTREAM_UNAVAILABLE,
    http: 502,
    public: 'Upstream refused to start: it does not match its pin',
  },
  ERR_SERVER_UNVERIFIED: {
    rpc: JSONRPC.UPSTREAM_UNAVAILABLE,
    http: 502,
    public: 'Upstream refused to start: its code cannot be verified',
  },
  ERR_SERVER_PIN_UNKNOWN: { rpc: JSONRPC.DENIED, http: 404, public: 'Unknown server pin' },
  ERR_SERVER_PIN_EXISTS: { rpc: JSONRPC.DENIED, http: 409, public: 'The server is pinned to other hashes' },
  ERR_SERVER_PIN_NOT_REFUSED: { rpc: JSONRPC.DENIED, http: 409, public: 'The server matches its pin' },
  ERR_SERVER_PIN_IN_CONFIG: { rpc: JSONRPC.DENIED, http: 409, public: 'The server is pinned in the config' },
  ERR_CONFIRM_UNAVAILABLE: {
    rpc: JSONRPC.DENIED,
    http: 403,
    public: 'Denied: the client cannot confirm this call',
  },
  ERR_CONFIRM_DECLINED: { rpc: JSONRPC.DENIED, http: 403, public: 'Denied: the user did not confirm' },
  ERR_WEBHOOK_SIGNATURE: UNAUTHORIZED,
  ERR_WEBHOOK_STALE: UNAUTHORIZED,
  ERR_WEBHOOK_REPLAYED: { rpc: JSONRPC.DENIED, http: 409, public: 'Conflict: message already received' },
  ERR_WEBHOOK_BAD_BODY: { rpc: JSONRPC.INVALID_REQUEST, http: 400, public: 'Invalid callback body' },
  ERR_SESSION_HISTORY_FULL: {
    rpc: JSONRPC.DENIED,
    http: 403,
    public: 'Denied: too many distinct tools used lately',
  },
  ERR_CALLER_HISTORY_FULL: { rpc: JSONRPC.DENIED, http: 429, public: 'Denied: try again later' },
  ERR_RESULT_WITHHELD: { rpc: JSONRPC.DENIED, http: 403, public: 'Result withheld: %s' },
  ERR_CREDENTIAL_UNAVAILABLE: { rpc: JSONRPC.DENIED, http: 503, public: 'Service unavailable' },
  ERR_INTERNAL: INTERNAL,
  ERR_ATTESTATION_FAILED: {
    rpc: JSONRPC.INTERNAL_ERROR,
    http: 500,
    public: 'Result withheld: it could not be signed',
  },
  ERR_ATTESTATION_MISSING: INTERNAL,
  ERR_ATTESTATION_INVALID: INTERNAL,
  ERR_ATTESTATION_KEY_UNKNOWN: INTERNAL,
  ERR_ATTESTATION_NOT_LOGGED: INTERNAL,
  ERR_REQUEST_SIGNATURE_INVALID: { rpc: JSONRPC.DENIED, http: 403, public: 'Denied: bad request signature' },
  ERR_REQUEST_SIGNATURE_STALE: {
    rpc: JSONRPC.DENIED,
    http: 403,
    public: 'Denied: the request signature is outside the time window',
  },
  ERR_REQUEST_SIGNATURE_REPLAYED: {
    rpc: JSONRPC.DENIED,
    http: 409,
    public: 'Denied: the request signature was already used',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export interface ErrorInit {
  /** Safe values for the `%s` slots of the code's public message; never names upstreams, paths or secrets. */
  publicArgs?: readonly string[];
  detail?: Record<string, unknown>;
  /** Structured `error.data` that is safe for the caller to see. */
  publicData?: unknown;
  cause?: unknown;
}

const fillIn = (template: string, args: readonly string[]): string => {
  let i = 0;
  return template.replace(/%s/g, () => args[i++] ?? '');
};

export class PortcullisError extends Error {
  readonly code: ErrorCode;
  readonly publicMessage: string;
  readonly rpcCode: number;
  readonly httpStatus: number;
  readonly detail: Record<string, unknown>;
  readonly publicData: unknown;

  constructor(code: ErrorCode, message: string, init: ErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    const spec: ErrorSpec = ERRORS[code];
    this.name = new.target.name;
    this.code = code;
    this.publicMessage = fillIn(spec.public, init.publicArgs ?? []);
    this.rpcCode = spec.rpc;
    this.httpStatus = spec.http;
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
  new ProtocolError('ERR_PARSE', `Malformed JSON: ${detail}`);

export const invalidRequest = (detail: string, logDetail?: Record<string, unknown>): ProtocolError =>
  new ProtocolError('ERR_INVALID_REQUEST', `Invalid JSON-RPC message: ${detail}`, {
    ...(logDetail ? { detail: logDetail } : {}),
  });

/** `detail` is shown to the caller: it names only the caller's own parameters. */
export const invalidParams = (detail: string): ProtocolError =>
  new ProtocolError('ERR_INVALID_PARAMS', `Invalid params: ${detail}`, { publicArgs: [detail] });

export const unknownTarget = (kind: string, name: string): Denial =>
  // The same text for "does not exist" and "exists but hidden or unroutable".
  new Denial('ERR_UNKNOWN_TARGET', `No ${kind} named ${JSON.stringify(name)}`, { publicArgs: [kind] });

export const methodNotFound = (method: string): Denial =>
  new Denial('ERR_METHOD_NOT_FOUND', `Method not found: ${method}`);

/** A cap is reached: refused before anything is spawned or held. `detail` says which cap, for the log. */
export const overCapacity = (detail: string): Denial =>
  new Denial('ERR_CAPACITY', `Over capacity: ${detail}`);

/** A server-to-client request found no client stream to go out on, not even after waiting for one. */
export const clientStreamUnavailable = (waitedMs: number): ProtocolError =>
  new ProtocolError('ERR_CLIENT_STREAM_UNAVAILABLE', `no client stream opened within ${waitedMs} ms`, {
    publicData: { reason: 'client_stream_unavailable' },
  });

export const internal = (cause: unknown): PortcullisError =>
  cause instanceof PortcullisError
    ? cause
    : new PortcullisError('ERR_INTERNAL', cause instanceof Error ? cause.message : String(cause), { cause });
