import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApprovalService } from '../approval/service.ts';
import type { AuditService } from '../audit/service.ts';
import { PortcullisError } from '../errors.ts';
import type { Gateway } from '../gateway.ts';
import { AuthError } from '../identity/errors.ts';
import type { Principal } from '../identity/principal.ts';
import type { Logger } from '../observability/log.ts';
import { verifyCaller } from '../transport/http-door.ts';
import { sendJson } from '../transport/http-reply.ts';

/**
 * The caller of an admin request, verified as the MCP door verifies callers
 * (and checked for expiry and revocation, as every call is). A refused
 * credential is counted with the door's refusals and answered with a challenge.
 */
export async function authenticateAdmin(
  gateway: Pick<Gateway, 'identity' | 'recheck' | 'audit'>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<Principal> {
  try {
    const principal = await verifyCaller(gateway.identity, req);
    await gateway.recheck(principal);
    return principal;
  } catch (err) {
    if (err instanceof AuthError) {
      gateway.audit.recordRefusal({
        remoteAddress: req.socket.remoteAddress ?? '',
        httpMethod: req.method ?? '',
        status: err.httpStatus,
        code: err.code,
        reason: `admin: ${err.reason}`,
      });
      res.setHeader('www-authenticate', gateway.identity.challenge(err));
    }
    throw err;
  }
}

const UNSIGNED: ReadonlySet<string> = new Set([
  'ERR_WEBHOOK_SIGNATURE',
  'ERR_WEBHOOK_STALE',
  'ERR_WEBHOOK_REPLAYED',
]);

/**
 * The audit record of a refused callback. One that is not an authentic, fresh
 * message can come from anyone, as often as they like: it is counted with the
 * door's refusals (per address and reason, never a record each). A body an
 * authentic source signed that is no decision gets an approval record of its own.
 */
export async function recordCallbackRefusal(
  deps: { approvals: ApprovalService; audit: AuditService; known: boolean },
  req: IncomingMessage,
  source: string,
  refusal: { err: unknown; at: number },
): Promise<void> {
  const { err } = refusal;
  if (!(err instanceof PortcullisError)) return;
  if (UNSIGNED.has(err.code)) {
    deps.audit.recordRefusal({
      remoteAddress: req.socket.remoteAddress ?? '',
      httpMethod: req.method ?? '',
      status: err.httpStatus,
      code: err.code,
      // Only a configured name: the path is the sender's to choose.
      reason: `callback ${deps.known ? source : '(unknown source)'}: ${err.code}`,
    });
    return;
  }
  if (err.code === 'ERR_WEBHOOK_BAD_BODY') {
    const act = { approver: `webhook:${source}`, channel: 'webhook', comment: '', at: refusal.at } as const;
    await deps.approvals.refused('', act, err.code);
  }
}

/** `{error: {code, message}}` with the error table's status and public message; anything else is a 500. */
export function sendAdminError(res: ServerResponse, err: unknown, log: Logger): void {
  const known = err instanceof PortcullisError && err.code !== 'ERR_INTERNAL';
  if (known) log.info('admin request refused', { code: err.code, err: err.message });
  else log.error('admin request failed', { err: String(err) });
  const e = known ? err : new PortcullisError('ERR_INTERNAL', String(err));
  if (res.headersSent) {
    res.end();
    return;
  }
  if (e.code === 'ERR_HTTP_METHOD_NOT_ALLOWED' && typeof e.detail.allow === 'string')
    res.setHeader('allow', e.detail.allow);
  sendJson(res, e.httpStatus, { error: { code: e.code, message: e.publicMessage } });
}
