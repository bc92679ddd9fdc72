import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import type { StdioUpstreamConfig } from '../config/schema.ts';
import { resolveValue } from '../config/secrets.ts';
import { CREDENTIAL_PLACEHOLDER } from '../credentials/config.ts';
import type { JsonRpcMessage } from '../jsonrpc.ts';
import type { Logger } from '../observability/log.ts';
import type { UpstreamSandbox } from '../sandbox/launch.ts';
import type { MessageTransport } from './transport.ts';

export interface StdioSpawn {
  /** Minted for this one process; its configured variable also replaces `${credential}` in `args`. */
  readonly credential?: Readonly<Record<string, string>>;
  /** The file to spawn: the command as server pinning resolved and checked it. */
  readonly executable?: string;
  /** Wraps the command line (bubblewrap), unless the upstream runs unsandboxed. */
  readonly sandbox: UpstreamSandbox;
}

/**
 * Spawns a stdio upstream with a scrubbed environment: the SDK's short list of
 * harmless variables (PATH, HOME, USER, SHELL, TERM, LOGNAME) plus exactly the
 * ones the config names, plus `credential`. Nothing else of the gateway's
 * environment is inherited. The command line is the sandbox's (bubblewrap
 * around the configured command) unless the upstream runs unsandboxed.
 */
export function stdioTransport(
  name: string,
  cfg: StdioUpstreamConfig,
  baseDir: string,
  log: Logger,
  spawn: StdioSpawn,
): MessageTransport & { readonly pid: number | null } {
  return new SandboxedStdioTransport(async () => {
    const credential = spawn.credential ?? {};
    const configured = Object.entries(cfg.env).map(([k, v]) => [k, resolveValue(v, baseDir)]);
    const env: Record<string, string> = { ...Object.fromEntries(configured), ...credential };
    const cwd = cfg.cwd ? resolve(baseDir, cfg.cwd) : baseDir;
    const path = env.PATH ?? getDefaultEnvironment().PATH ?? '';
    const run = await spawn.sandbox.wrap({
      command: spawn.executable ?? cfg.command,
      args: withCredential(cfg, credential),
      cwd,
      path,
    });
    const transport = new StdioClientTransport({
      command: run.command,
      args: run.args,
      env: { ...env, ...run.env },
      cwd,
      stderr: 'pipe',
    });
    const stderr = transport.stderr as Readable | null;
    if (stderr) {
      createInterface({ input: stderr }).on('line', (line) =>
        log.debug('upstream stderr', { upstream: name, line }),
      );
    }
    return { inner: transport, exited: run.exited };
  });
}

/** `args` with `${credential}` replaced by the credential's variable; refused when there is none to put there. */
function withCredential(cfg: StdioUpstreamConfig, credential: Readonly<Record<string, string>>): string[] {
  if (!cfg.args.some((a) => a.includes(CREDENTIAL_PLACEHOLDER))) return cfg.args;
  const value = cfg.credentials?.kind === 'postgres-role' ? credential[cfg.credentials.env] : undefined;
  if (value === undefined)
    throw new Error(`${CREDENTIAL_PLACEHOLDER} in args, and no credential to put there`);
  return cfg.args.map((a) => a.replaceAll(CREDENTIAL_PLACEHOLDER, value));
}

type SdkStdio = StdioClientTransport;
/** The SDK transport, and what to undo once its process has exited (its memory cgroup). */
type Spawned = { readonly inner: SdkStdio; readonly exited: () => void };

/**
 * The SDK's stdio transport, made on `start`: the sandbox's command line may
 * need its egress proxy running first, and a sandbox that cannot be had fails
 * the start (and with it the handshake) with its own error.
 */
class SandboxedStdioTransport implements MessageTransport {
  private inner: SdkStdio | undefined;
  private closed = false;
  onmessage?: ((message: JsonRpcMessage) => void) | undefined;
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  private readonly make: () => Promise<Spawned>;

  constructor(make: () => Promise<Spawned>) {
    this.make = make;
  }

  /** The spawned process (bwrap, or setpriv before it), once started. */
  get pid(): number | null {
    return this.inner?.pid ?? null;
  }

  async start(): Promise<void> {
    const { inner, exited } = await this.make();
    if (this.closed) return exited();
    this.inner = inner;
    inner.onmessage = (m) => this.onmessage?.(m as JsonRpcMessage);
    inner.onclose = () => {
      exited();
      this.onclose?.();
    };
    inner.onerror = (e) => this.onerror?.(e);
    await inner.start().catch((e: unknown) => {
      exited();
      throw e;
    });
  }

  async send(message: JsonRpcMessage): Promise<void> {
    if (!this.inner) throw new Error('not started');
    await this.inner.send(message as never);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.inner?.close();
  }
}
