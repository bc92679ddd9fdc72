import type { LoadedConfig } from '../config/load.ts';
import type { StdioUpstreamConfig, UpstreamConfig } from '../config/schema.ts';
import type { Logger } from '../observability/log.ts';
import { gatewayPrivatePaths } from '../sandbox/hidden.ts';
import type { SandboxHost } from '../sandbox/host.ts';
import { sandboxMode, sandboxSummary, UpstreamSandbox } from '../sandbox/launch.ts';
import { httpTransport } from './http.ts';
import type { UpstreamSpec } from './pool.ts';
import { stdioTransport } from './stdio.ts';

/** Every configured upstream, as the pool spawns and connects it; stdio ones in their sandboxes. */
export const upstreamSpecs = (loaded: LoadedConfig, log: Logger, host: SandboxHost): UpstreamSpec[] =>
  Object.entries(loaded.config.upstreams).map(([name, cfg]) => upstreamSpec(name, cfg, loaded, log, host));

function upstreamSpec(
  name: string,
  cfg: UpstreamConfig,
  loaded: LoadedConfig,
  log: Logger,
  host: SandboxHost,
): UpstreamSpec {
  const common = { name, prefix: cfg.prefix ?? name, timeoutMs: cfg.timeoutMs, isolation: cfg.isolation };
  if (cfg.transport !== 'stdio') {
    return {
      ...common,
      restart: { initialDelayMs: 250, maxDelayMs: 30_000 },
      createTransport: () => httpTransport(name, cfg, loaded.baseDir, log),
    };
  }
  const sandbox = upstreamSandbox(name, cfg, loaded, log, host);
  return {
    ...common,
    restart: cfg.restart,
    launch: { command: cfg.command, sandbox: sandboxSummary(sandbox.mode) },
    createTransport: () => stdioTransport(name, cfg, loaded.baseDir, log, sandbox),
    close: () => sandbox.close(),
  };
}

/** Decided once at start, and said at start: a sandbox refused or missing is never a quiet surprise. */
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
