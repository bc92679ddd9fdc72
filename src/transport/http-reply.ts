import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ErrorCode, type ErrorInit, JSONRPC, PortcullisError, ProtocolError } from '../errors.ts';
import { errorResponse, type JsonRpcResponse } from '../jsonrpc.ts';

type Headers = IncomingMessage['headers'];

/** The first value of a header Node may have kept as a list. */
export const header = (h: Headers, name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

export function acceptsSse(req: IncomingMessage): boolean {
  return (header(req.headers, 'accept') ?? '').includes('text/event-stream');
}

/** Errors a handler returns stay in-band on 200; only protocol-level refusals and capacity change the status. */
export function statusFor(response: JsonRpcResponse): number {
  if (response.error?.code === JSONRPC.OVERLOADED) return 503;
  return response.error?.code === JSONRPC.MISSING_CAPABILITY ? 400 : 200;
}

export function accepted(res: ServerResponse): void {
  res.writeHead(202).end();
}

/** A refusal by the HTTP transport itself: the table gives its status, JSON-RPC code and text. */
export function refuse(
  res: ServerResponse,
  code: ErrorCode,
  init: ErrorInit = {},
  id: JsonRpcResponse['id'] = null,
): void {
  sendPortcullisError(res, id, new ProtocolError(code, `refused at the HTTP transport: ${code}`, init));
}

export function sendJson(res: ServerResponse, status: number, doc: unknown): void {
  const body = JSON.stringify(doc);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function sendError(
  res: ServerResponse,
  status: number,
  id: JsonRpcResponse['id'],
  error: { code: number; message: string; data?: unknown },
): void {
  const body = JSON.stringify(errorResponse(id, error));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function sendPortcullisError(res: ServerResponse, id: JsonRpcResponse['id'], err: unknown): void {
  if (err instanceof PortcullisError) {
    sendError(res, err.httpStatus, id, err.toRpcError());
    return;
  }
  throw err;
}
