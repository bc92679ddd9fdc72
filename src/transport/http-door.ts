import type { IncomingMessage, ServerResponse } from 'node:http';
import { TLSSocket } from 'node:tls';
import type { Config } from '../config/schema.ts';
import type { PortcullisError } from '../errors.ts';
import type { Gateway } from '../gateway.ts';
import { AuthError } from '../identity/errors.ts';
import type { Principal } from '../identity/principal.ts';
import type { IdentityService } from '../identity/service.ts';
import type { Logger } from '../observability/log.ts';
import { createRebindingGuard } from './guard.ts';
import { header, sendPortcullisError } from './http-reply.ts';
import { bodyRefusalReason } from './refusals.ts';

/** What the door makes of a request before any credential is read. */
export type Admission =
  | { kind: 'refused'; code: 'ERR_HOST_FORBIDDEN' | 'ERR_ORIGIN_FORBIDDEN' | 'ERR_NOT_FOUND' }
  | { kind: 'document'; doc: unknown }
  | { kind: 'mcp' };

export type DoorListen = Pick<Config['listen'], 'host' | 'allowedHosts' | 'allowedOrigins' | 'path'>;

/**
 * Host and Origin (DNS rebinding), then the path: a public identity document
 * (served to GET only, without a credential), the MCP endpoint, or nothing.
 */
export class DoorRules {
  readonly #guard: ReturnType<typeof createRebindingGuard>;
  readonly #path: string;
  readonly #wellKnown: (path: string) => unknown;

  constructor(listen: DoorListen, wellKnown: (path: string) => unknown) {
    this.#guard = createRebindingGuard({
      bindHost: listen.host,
      allowedHosts: listen.allowedHosts,
      allowedOrigins: listen.allowedOrigins,
    });
    this.#path = listen.path;
    this.#wellKnown = wellKnown;
  }

  admit(req: Pick<IncomingMessage, 'method' | 'url' | 'headers'>): Admission {
    if (!this.#guard.hostAllowed(req.headers.host)) return { kind: 'refused', code: 'ERR_HOST_FORBIDDEN' };
    if (!this.#guard.originAllowed(header(req.headers, 'origin')))
      return { kind: 'refused', code: 'ERR_ORIGIN_FORBIDDEN' };
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const doc = req.method === 'GET' ? this.#wellKnown(path) : undefined;
    if (doc !== undefined) return { kind: 'document', doc };
    if (path !== this.#path) return { kind: 'refused', code: 'ERR_NOT_FOUND' };
    return { kind: 'mcp' };
  }
}

/**
 * The caller of an HTTP request, as the gateway's identity verifies it: the
 * one `Authorization` header and, over TLS, the peer's certificate. Throws
 * the refusal (an AuthError for a missing or bad credential).
 */
export async function verifyCaller(
  identity: Pick<IdentityService, 'authenticate'>,
  req: Pick<IncomingMessage, 'rawHeaders' | 'headers' | 'socket'>,
): Promise<Principal> {
  // Node keeps only the first of repeated Authorization headers: refuse the ambiguity instead.
  if (req.rawHeaders.filter((h, i) => i % 2 === 0 && h.toLowerCase() === 'authorization').length > 1)
    throw new AuthError('bad_request', { why: 'several Authorization headers' });
  const peer = req.socket instanceof TLSSocket ? req.socket.getPeerX509Certificate() : undefined;
  return identity.authenticate(header(req.headers, 'authorization'), peer);
}

export interface HttpDoorDeps {
  gateway: Pick<Gateway, 'identity' | 'recheck' | 'audit'>;
  listen: DoorListen;
  log: Logger;
}

/**
 * The credential check at the door, and the record of every refusal there.
 * A refused credential answers with its status and a challenge; the refusal
 * is logged and counted in the audit log.
 */
export class HttpDoor {
  readonly rules: DoorRules;
  readonly #gateway: HttpDoorDeps['gateway'];
  readonly #log: Logger;

  constructor(deps: HttpDoorDeps) {
    this.#gateway = deps.gateway;
    this.#log = deps.log;
    this.rules = new DoorRules(deps.listen, (path) => deps.gateway.identity.wellKnown(path));
  }

  /**
   * Verifies the credential. Expiry and revocation are checked again by the
   * identify stage of every call, after the body is read; `stillValid` checks
   * them for what runs no call.
   */
  async authenticate(req: IncomingMessage, res: ServerResponse): Promise<Principal | undefined> {
    try {
      return await verifyCaller(this.#gateway.identity, req);
    } catch (err) {
      this.#refuse(req, res, err);
      return undefined;
    }
  }

  async stillValid(req: IncomingMessage, res: ServerResponse, principal: Principal): Promise<boolean> {
    try {
      await this.#gateway.recheck(principal);
      return true;
    } catch (err) {
      this.#refuse(req, res, err);
      return false;
    }
  }

  /** A body refused before it became a call is counted with the other refusals at the door. */
  recordBodyRefusal(req: IncomingMessage, err: PortcullisError): void {
    this.#record(req, err, bodyRefusalReason(err));
  }

  #refuse(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    req.resume();
    if (!(err instanceof AuthError)) {
      sendPortcullisError(res, null, err);
      return;
    }
    this.#record(req, err, err.reason);
    res.setHeader('www-authenticate', this.#gateway.identity.challenge(err));
    sendPortcullisError(res, null, err);
  }

  #record(req: IncomingMessage, err: PortcullisError, reason: string): void {
    this.#log.info('request refused', { code: err.code, reason });
    this.#gateway.audit.recordRefusal({
      remoteAddress: req.socket.remoteAddress ?? '',
      httpMethod: req.method ?? '',
      status: err.httpStatus,
      code: err.code,
      reason,
    });
  }
}
