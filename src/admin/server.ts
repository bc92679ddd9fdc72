import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApproverRole } from '../approval/approvers.ts';
import { callbackVerifiers } from '../approval/callback.ts';
import type { LoadedConfig } from '../config/load.ts';
import type { Gateway } from '../gateway.ts';
import type { Logger } from '../observability/log.ts';
import { createRebindingGuard } from '../transport/guard.ts';
import { ApprovalsApi } from './approvals-api.ts';

export interface AdminListener {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Operational endpoints (health, Prometheus metrics, upstream status), open
 * to whoever reaches the port, and the approvals API under `/approvals`, for
 * authenticated approvers and signed callbacks only.
 */
export async function startAdminListener(
  loaded: LoadedConfig,
  gateway: Gateway,
  log: Logger,
): Promise<AdminListener> {
  const cfg = loaded.config.admin;
  // Loopback alone does not stop a web page that rebinds its own name to 127.0.0.1.
  const guard = createRebindingGuard({
    bindHost: cfg.host,
    allowedHosts: cfg.allowedHosts,
    allowedOrigins: [],
  });
  const approvals = new ApprovalsApi({
    gateway,
    approvers: new ApproverRole(loaded.config.approvals.approvers),
    // Secrets are resolved now: a bad one stops the start, not the first callback.
    callbacks: callbackVerifiers(loaded.config.approvals.callbacks, {
      baseDir: loaded.baseDir,
      nonces: gateway.records,
      now: gateway.now,
    }),
    now: gateway.now,
    log,
  });
  const server = http.createServer((req, res) => {
    if (!guard.hostAllowed(req.headers.host) || !guard.originAllowed(req.headers.origin))
      return send(res, 403, 'text/plain', 'Forbidden\n');
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    if (path === '/approvals' || path.startsWith('/approvals/')) return void approvals.handle(req, res, url);
    if (req.method !== 'GET') return send(res, 405, 'text/plain', 'Method not allowed\n');
    if (path === '/healthz') {
      // A broken audit log refuses every call until the gateway restarts: say so to whoever restarts it.
      if (gateway.needsRestart())
        return send(
          res,
          503,
          'application/json',
          JSON.stringify({ status: 'restart-needed', failing: ['audit'] }),
        );
      return send(res, 200, 'application/json', JSON.stringify({ status: 'ok' }));
    }
    if (path === '/readyz') return void ready(gateway, res);
    if (path === '/metrics') return send(res, 200, 'text/plain; version=0.0.4', gateway.metrics.render());
    if (path === '/status') {
      const body = { upstreams: gateway.pool.names, stages: gateway.pipeline.stages.map((s) => s.name) };
      return send(res, 200, 'application/json', JSON.stringify(body));
    }
    return send(res, 404, 'text/plain', 'Not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.port, cfg.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host}:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** 200 when calls can be served; 503 naming the failing parts when every call would be denied (why is in the log). */
async function ready(gateway: Gateway, res: http.ServerResponse): Promise<void> {
  const failing = await gateway.readiness();
  if (failing.length === 0) return send(res, 200, 'application/json', JSON.stringify({ status: 'ready' }));
  send(res, 503, 'application/json', JSON.stringify({ status: 'not-ready', failing }));
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
