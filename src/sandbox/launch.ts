import { fileURLToPath } from 'node:url';
import { type PortcullisError, UpstreamError } from '../errors.ts';
import { DEFAULT_SANDBOX, type SandboxConfig, type SandboxSetting } from './config.ts';
import { type EgressDecision, EgressProxy } from './egress.ts';
import type { SandboxHost } from './host.ts';
import { type MemoryCgroup, MemoryCgroups } from './memory-cgroup.ts';
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

/** The sandbox as an audit record names it, with what enforces its memory limit. */
export function sandboxSummary(mode: SandboxMode, host: SandboxHost): Record<string, unknown> {
  if (mode.kind !== 'sandboxed')
    return { mechanism: 'none', why: mode.kind === 'refused' ? 'refused' : mode.why };
  const { network, writable, limits } = mode.config;
  const memory = host.available && host.memory ? `cgroup v${host.memory.version}` : 'RLIMIT_DATA';
  return {
    mechanism: 'bubblewrap',
    network: typeof network === 'string' ? network : { allow: [...network.allow] },
    writable: [...writable],
    limits: { ...limits },
    memoryLimitBy: memory,
  };
}

/** A command line to spawn, and what to undo once its process has exited. */
export interface SandboxLaunch extends SandboxedCommand {
  /** Removes the process's memory cgroup (a no-op where there is none); call after the process exited. */
  readonly exited: () => void;
}

export const sandboxUnavailable = (upstream: string, reason: string): PortcullisError =>
  new UpstreamError('ERR_SANDBOX_UNAVAILABLE', `${upstream}: its sandbox cannot be provided: ${reason}`);

export interface UpstreamSandboxOptions {
  readonly upstream: string;
  readonly mode: SandboxMode;
  readonly host: SandboxHost;
  readonly hidden: readonly string[];
  readonly egressDecided: (d: EgressDecision) => void;
  /** Whether the egress proxy may let a connection out now (the audit log can record it). */
  readonly egressRecordable: () => boolean;
}

/**
 * One upstream's sandbox: wraps each spawn's command line, and in allowlist
 * mode runs the egress proxy its instances share (started on first spawn).
 */
export class UpstreamSandbox {
  private readonly o: UpstreamSandboxOptions;
  private proxy: Promise<EgressProxy> | undefined;
  private readonly cgroups: MemoryCgroups | undefined;
  /** Cgroups not yet removed: of running processes, and of exited ones whose pid namespace is still being torn down. */
  private readonly made = new Set<MemoryCgroup>();
  private readonly exitedOnes = new Set<MemoryCgroup>();

  constructor(opts: UpstreamSandboxOptions) {
    this.o = opts;
    const host = opts.host;
    this.cgroups = host.available && host.memory ? new MemoryCgroups(host.memory) : undefined;
  }

  get mode(): SandboxMode {
    return this.o.mode;
  }

  get host(): SandboxHost {
    return this.o.host;
  }

  /** The command line to spawn; throws ERR_SANDBOX_UNAVAILABLE when the sandbox asked for cannot be had. */
  async wrap(spawn: { command: string; args: string[]; cwd: string; path: string }): Promise<SandboxLaunch> {
    const { mode, host } = this.o;
    if (mode.kind === 'refused') throw sandboxUnavailable(this.o.upstream, mode.reason);
    if (mode.kind === 'unsandboxed')
      return { command: spawn.command, args: spawn.args, env: {}, exited: () => {} };
    if (!host.available) throw sandboxUnavailable(this.o.upstream, host.reason);
    const network = mode.config.network;
    const egress = typeof network === 'object' ? await this.egress(network.allow) : undefined;
    const cgroup = this.memoryCgroup(mode.config.limits.memoryMb);
    const exited = () => cgroup && this.release(cgroup);
    try {
      const command = sandboxedCommand({
        host,
        config: mode.config,
        ...spawn,
        hidden: this.o.hidden,
        ...(egress ? { egress: { socket: egress.socketPath, bridge: BRIDGE, node: process.execPath } } : {}),
        ...(cgroup ? { memoryCgroup: cgroup.procs } : {}),
      });
      return { ...command, exited };
    } catch (err) {
      exited();
      throw err;
    }
  }

  /** A fresh cgroup for the next process; one that cannot be made fails the start (never an unlimited sandbox). */
  private memoryCgroup(memoryMb: number): MemoryCgroup | undefined {
    if (!this.cgroups) return undefined;
    this.sweep();
    try {
      const cgroup = this.cgroups.create(memoryMb);
      this.made.add(cgroup);
      return cgroup;
    } catch (e) {
      throw sandboxUnavailable(this.o.upstream, `its memory cgroup cannot be made: ${(e as Error).message}`);
    }
  }

  private release(cgroup: MemoryCgroup): void {
    this.exitedOnes.add(cgroup);
    this.sweep();
  }

  private sweep(): void {
    for (const cgroup of this.exitedOnes) {
      cgroup.release();
      if (!cgroup.released()) continue;
      this.exitedOnes.delete(cgroup);
      this.made.delete(cgroup);
    }
  }

  private egress(allow: readonly string[]): Promise<EgressProxy> {
    this.proxy ??= EgressProxy.start({
      upstream: this.o.upstream,
      allow,
      decided: this.o.egressDecided,
      recordable: this.o.egressRecordable,
    });
    return this.proxy;
  }

  async close(): Promise<void> {
    const proxy = this.proxy;
    this.proxy = undefined;
    // Called after the pool closed every instance: whatever is still in a cgroup is to go.
    await Promise.all([...this.made].map((c) => c.drain()));
    this.made.clear();
    this.exitedOnes.clear();
    await proxy?.then((p) => p.close()).catch(() => {});
  }
}
