import { type AdminListener, startAdminListener } from './admin/server.ts';
import type { LoadedConfig } from './config/load.ts';
import { Gateway } from './gateway.ts';
import type { Logger } from './observability/log.ts';
import type { SandboxHost } from './sandbox/host.ts';
import { type HttpListener, startHttpListener } from './transport/http-listener.ts';

export interface RunningGateway {
  gateway: Gateway;
  listener: HttpListener;
  admin: AdminListener | undefined;
  /** Stops the listeners, then the gateway; `onStep` hears which part it is closing. */
  close(onStep?: (step: string) => void): Promise<void>;
}

const OPEN_GATEWAY_BANNER = `
  ************************************************************************
  *  OPEN GATEWAY: identity.mode is "none". Any local process can call   *
  *  every tool. Allowed on loopback only; configure caller identity     *
  *  before anything else can reach this port.                           *
  ************************************************************************
`;

export async function startGateway(
  loaded: LoadedConfig,
  log: Logger,
  opts: { banner?: boolean; sandboxHost?: SandboxHost; now?: () => number } = {},
): Promise<RunningGateway> {
  const gateway = new Gateway(loaded, {
    log,
    ...(opts.sandboxHost ? { sandboxHost: opts.sandboxHost } : {}),
    ...(opts.now ? { now: opts.now } : {}),
  });
  const listener = await startHttpListener(loaded.config, gateway, log);
  const admin = loaded.config.admin.enabled
    ? await startAdminListener(loaded, gateway, log).catch(async (err) => {
        // A callback secret that does not resolve stops the start: nothing is left listening.
        await listener.close();
        await gateway.close();
        throw err;
      })
    : undefined;
  if (loaded.config.identity.mode === 'none') {
    if (opts.banner !== false) process.stderr.write(OPEN_GATEWAY_BANNER);
    log.warn('open gateway: no caller identity; loopback only', { url: listener.url });
  }
  return {
    gateway,
    listener,
    admin,
    async close(onStep) {
      // Held calls end first (abandoned, answered cleanly) so the listeners have nothing left waiting.
      onStep?.('held calls');
      await gateway.releaseHeld();
      onStep?.('admin listener');
      await admin?.close();
      onStep?.('MCP listener');
      await listener.close();
      onStep?.('gateway');
      await gateway.close();
    },
  };
}

/**
 * Resolves when the process is asked to stop. The handlers stay: a repeated
 * signal (a terminal's Ctrl-C and a forwarded one, a supervisor's retry) must
 * not kill a gateway that is still writing its audit log on the way out; the
 * shutdown grace period bounds how long that takes.
 */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => resolve(sig));
  });
}
