import { fileURLToPath } from 'node:url';
import { type PortcullisError, UpstreamError } from '../errors.ts';
import { DEFAULT_SANDBOX, type SandboxConfig, type SandboxSetting } from './config.ts';
import { type EgressDecision, EgressProxy } from './egress.ts';
import type { SandboxHost } from './host.ts';
import { type SandboxedCommand, sandboxedCommand } from './plan.ts';

const BRIDGE = fileURLToPath(new URL('./bridge.ts', import.meta.url));

/** How one upstream is run, decided once at start from its config and the machine. */
export type SandboxMode =
  | { readonly kind: 'sandboxed'; readonly config: SandboxConfig; readonly explicit: boolean }
  | { readonly kind: 'unsandboxed'; readonly why: 'off' | 'unavailable'; readonly reason?: string }
  | { readonly kind: 'refused'; readonly reason: string };

/**
 * Asked for explicitly and not available: refused (fail closed). Left out:
 * the default sandbox where the machine has one, else unsandboxed (the
 * gateway says so loudly). `off`: unsandboxed, as configured.
 */
export function sandboxMode(setting: SandboxSetting, host: SandboxHost): SandboxMode {
  if (setting === 'off') return { kind: 'unsandboxed', why: 'off' };
  if (!host.available) {
    return setting
      ? { kind: 'refused', reason: host.reason }
      : { kind: 'unsandboxed', why: 'unavailable', reason: host.reason };
  }
  return { kind: 'sandboxed', config: setting ?? DEFAULT_SANDBOX, explicit: setting !== undefined };
}

/** The sandbox as an audit record names it. */
export function sandboxSummary(mode: SandboxMode): Record<string, unknown> {
  if (mode.kind !== 'sandboxed')
    return { mechanism: 'none', why: mode.kind === 'refused' ? 'refused' : mode.why };
  const { network, writable, limits } = mode.config;
  return {
    mechanism: 'bubblewrap',
    network: typeof network === 'string' ? network : { allow: [...network.allow] },
    writable: [...writable],
    limits: { ...limits },
  };
}

export const sandboxUnavailable = (upstream: string, reason: string): PortcullisError =>
  new UpstreamError('ERR_SANDBOX_UNAVAILABLE', `${upstream}: its sandbox cannot be provided: ${reason}`);

export interface UpstreamSandboxOptions {
  readonly upstream: string;
  readonly mode: SandboxMode;
  readonly host: SandboxHost;
  readonly hidden: readonly string[];
  readonly egressDecided: (d: EgressDecision) => void;
}

/**
 * One upstream's sandbox: wraps each spawn's command line, and in allowlist
 * mode runs the egress proxy its instances share (started on first spawn).
 */
export class UpstreamSandbox {
  private readonly o: UpstreamSandboxOptions;
  private proxy: Promise<EgressProxy> | undefined;

  constructor(opts: UpstreamSandboxOptions) {
    this.o = opts;
  }

  get mode(): SandboxMode {
    return this.o.mode;
  }

  /** The command line to spawn; throws ERR_SANDBOX_UNAVAILABLE when the sandbox asked for cannot be had. */
  async wrap(spawn: {
    command: string;
    args: string[];
    cwd: string;
    path: string;
  }): Promise<SandboxedCommand> {
    const { mode, host } = this.o;
    if (mode.kind === 'refused') throw sandboxUnavailable(this.o.upstream, mode.reason);
    if (mode.kind === 'unsandboxed') return { command: spawn.command, args: spawn.args, env: {} };
    if (!host.available) throw sandboxUnavailable(this.o.upstream, host.reason);
    const network = mode.config.network;
    const egress = typeof network === 'object' ? await this.egress(network.allow) : undefined;
    return sandboxedCommand({
      host,
      config: mode.config,
      ...spawn,
      hidden: this.o.hidden,
      ...(egress ? { egress: { socket: egress.socketPath, bridge: BRIDGE, node: process.execPath } } : {}),
    });
  }

  private egress(allow: readonly string[]): Promise<EgressProxy> {
    this.proxy ??= EgressProxy.start({ upstream: this.o.upstream, allow, decided: this.o.egressDecided });
    return this.proxy;
  }

  async close(): Promise<void> {
    const proxy = this.proxy;
    this.proxy = undefined;
    await proxy?.then((p) => p.close()).catch(() => {});
  }
}
