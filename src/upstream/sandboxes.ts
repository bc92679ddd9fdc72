import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { LoadedConfig } from '../config/load.ts';
import type { StdioUpstreamConfig } from '../config/schema.ts';
import type { Logger } from '../observability/log.ts';
import type { EgressDecision } from '../sandbox/egress.ts';
import { gatewayPrivatePaths } from '../sandbox/hidden.ts';
import { reachableBySandbox, type SandboxHost } from '../sandbox/host.ts';
import { type SandboxMode, sandboxMode, UpstreamSandbox } from '../sandbox/launch.ts';

/** Where sandboxed upstreams' connections are recorded, and whether they can be now. */
export interface EgressAudit {
  readonly record: (d: EgressDecision) => void;
  /** False while the audit log is not open or refuses every record: the egress proxies then let nothing out. */
  readonly recordable: () => boolean;
}

/** The sandbox of every stdio upstream, decided once at start, and said at start when refused or missing. */
export function upstreamSandboxes(
  loaded: LoadedConfig,
  log: Logger,
  host: SandboxHost,
  egressAudit: EgressAudit,
): Map<string, UpstreamSandbox> {
  const out = new Map<string, UpstreamSandbox>();
  for (const [name, cfg] of Object.entries(loaded.config.upstreams)) {
    if (cfg.transport === 'stdio')
      out.set(name, upstreamSandbox(name, cfg, loaded, { log, host, egressAudit }));
  }
  return out;
}

function upstreamSandbox(
  name: string,
  cfg: StdioUpstreamConfig,
  loaded: LoadedConfig,
  d: { log: Logger; host: SandboxHost; egressAudit: EgressAudit },
): UpstreamSandbox {
  const { log, host } = d;
  const mode = reachable(sandboxMode(cfg.sandbox, host), cfg, loaded.baseDir, host);
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
    egressRecordable: d.egressAudit.recordable,
    egressDecided: (decision) => {
      if (decision.allowed) log.info('egress allowed', { ...decision });
      else if (decision.malformed)
        log.warn('egress refused: a target that does not parse', { ...decision, alert: true });
      else if (decision.unrecorded)
        log.error('egress refused: the audit log cannot record it', { ...decision, alert: true });
      else log.warn("egress refused: not on the upstream's allowlist", { ...decision, alert: true });
      try {
        d.egressAudit.record(decision);
      } catch (err) {
        // The proxy's handlers must not throw: the decision stands, and the log line above keeps it.
        log.error('egress not counted for the audit log', { ...decision, err: String(err) });
      }
    },
  });
}

/**
 * A sandbox whose user cannot reach the files the upstream runs (under a root
 * gateway, a checkout in a folder closed to others) would fail every start:
 * left out of the config, the upstream runs unsandboxed and says why; asked
 * for, it is refused with that reason.
 */
function reachable(
  mode: SandboxMode,
  cfg: StdioUpstreamConfig,
  baseDir: string,
  host: SandboxHost,
): SandboxMode {
  if (mode.kind !== 'sandboxed') return mode;
  const cwd = cfg.cwd ? resolve(baseDir, cfg.cwd) : baseDir;
  const files = [cfg.command, ...cfg.args]
    .filter((a) => a.includes('/'))
    .map((a) => resolve(cwd, a))
    .filter((f) => existsSync(f));
  const closed = files.find((f) => !reachableBySandbox(host, f));
  if (!closed) return mode;
  const reason = `the sandbox user cannot reach ${closed}: a folder above it is closed to others`;
  return mode.explicit ? { kind: 'refused', reason } : { kind: 'unsandboxed', why: 'unavailable', reason };
}
