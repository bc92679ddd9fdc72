import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/schema.ts';
import type { Gateway } from '../gateway.ts';
import type { Logger } from '../observability/log.ts';
import { McpHttpHandler } from './http-handler.ts';
import { LegacySessionTable } from './legacy-sessions.ts';

export interface HttpListener {
  readonly server: http.Server;
  readonly url: string;
  /** Ends every legacy session idle (and without a GET stream) for `listen.sessionIdleMs` as of `at`. */
  sweepSessions(at?: number): Promise<void>;
  close(): Promise<void>;
}

/** Serves MCP over Streamable HTTP (both eras, see McpHttpHandler) at `listen.path`. */
export async function startHttpListener(
  config: Config,
  gateway: Gateway,
  log: Logger,
  now: () => number = Date.now,
): Promise<HttpListener> {
  const { listen, limits } = config;
  const sessions = new LegacySessionTable({
    idleMs: listen.sessionIdleMs,
    close: (session) => gateway.closeSession(session),
    now,
  });
  const handler = new McpHttpHandler({ gateway, listen, limits, log, sessions });
  // With identity.mtls the listener is HTTPS and requires client certificates (SPIFFE SVIDs).
  const tls = gateway.identity.createServer?.(handler.onRequest);
  const server: http.Server = tls?.server ?? http.createServer(handler.onRequest);
  server.keepAliveTimeout = 65_000;

  const sweepSessions = (at?: number): Promise<void> => sessions.sweep(at);
  const sweeper = setInterval(() => void sweepSessions(), Math.min(listen.sessionIdleMs, 60_000));
  sweeper.unref();

  const origin = await listenAt(server, listen, { tls: tls !== undefined });
  return {
    server,
    url: `${origin}${listen.path}`,
    sweepSessions,
    async close() {
      clearInterval(sweeper);
      tls?.stop();
      await sessions.closeAll();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Starts listening; resolves with the origin (scheme, host and port) clients reach. */
async function listenAt(
  server: http.Server,
  listen: Config['listen'],
  opts: { tls: boolean },
): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return `${opts.tls ? 'https' : 'http'}://${host}:${addr.port}`;
}
