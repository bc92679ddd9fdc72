import type { LoadedConfig } from '../config/load.ts';
import type { StdioUpstreamConfig } from '../config/schema.ts';
import type { Logger } from '../observability/log.ts';
import { gatewayPrivatePaths } from '../sandbox/hidden.ts';
import type { SandboxHost } from '../sandbox/host.ts';
import { sandboxMode, UpstreamSandbox } from '../sandbox/launch.ts';

/** The sandbox of every stdio upstream, decided once at start, and said at start when refused or missing. */
export function upstreamSandboxes(
  loaded: LoadedConfig,
  log: Logger,
  host: SandboxHost,
): Map<string, UpstreamSandbox> {
  const out = new Map<string, UpstreamSandbox>();
  for (const [name, cfg] of Object.entries(loaded.config.upstreams)) {
    if (cfg.transport === 'stdio') out.set(name, upstreamSandbox(name, cfg, loaded, log, host));
  }
  return out;
}

function upstreamSandbox(
  name: string,
  cfg: StdioUpstreamConfig,
  loaded: LoadedConfig,
  log: Logger,
  host: SandboxHost,
): UpstreamSandbox {
  const mode = sandboxMode(cfg.sandbox, host);
  if (mode.kind === 'refused') {
    log.error('upstream not started: its sandbox cannot be provided on this machine', {
      upstream: name,
      reason: mode.reason,
      alert: true,
    });
  } else if (mode.kind === 'unsandboxed') {
    log.warn(
      mode.why === 'off'
        ? "UPSTREAM RUNS UNSANDBOXED (sandbox: off): it has the gateway user's files and network"
        : "UPSTREAM RUNS UNSANDBOXED: no sandbox on this machine; it has the gateway user's files and network",
      { upstream: name, alert: true, ...(mode.reason ? { reason: mode.reason } : {}) },
    );
  }
  const hidden = gatewayPrivatePaths(loaded.config, {
    baseDir: loaded.baseDir,
    upstream: name,
    ...(loaded.path ? { configPath: loaded.path } : {}),
  });
  return new UpstreamSandbox({
    upstream: name,
    mode,
    host,
    hidden,
    egressDecided: (d) =>
      d.allowed
        ? log.info('egress allowed', { ...d })
        : log.warn("egress refused: not on the upstream's allowlist", { ...d, alert: true }),
  });
}
