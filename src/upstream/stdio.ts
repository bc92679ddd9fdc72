import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import type { StdioUpstreamConfig } from '../config/schema.ts';
import { resolveValue } from '../config/secrets.ts';
import type { JsonRpcMessage } from '../jsonrpc.ts';
import type { Logger } from '../observability/log.ts';
import type { UpstreamSandbox } from '../sandbox/launch.ts';
import type { MessageTransport } from './transport.ts';

/**
 * Spawns a stdio upstream with a scrubbed environment: the SDK's short list of
 * harmless variables (PATH, HOME, USER, SHELL, TERM, LOGNAME) plus exactly the
 * ones the config names. Nothing else of the gateway's environment is inherited.
 * The command line is the sandbox's (bubblewrap around the configured command)
 * unless the upstream runs unsandboxed.
 */
export function stdioTransport(
  name: string,
  cfg: StdioUpstreamConfig,
  baseDir: string,
  log: Logger,
  sandbox: UpstreamSandbox,
): MessageTransport {
  return new SandboxedStdioTransport(async () => {
    const env = Object.fromEntries(Object.entries(cfg.env).map(([k, v]) => [k, resolveValue(v, baseDir)]));
    const cwd = cfg.cwd ? resolve(baseDir, cfg.cwd) : baseDir;
    const path = env.PATH ?? getDefaultEnvironment().PATH ?? '';
    const run = await sandbox.wrap({ command: cfg.command, args: cfg.args, cwd, path });
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
    return transport as unknown as MessageTransport;
  });
}

/**
 * The SDK's stdio transport, made on `start`: the sandbox's command line may
 * need its egress proxy running first, and a sandbox that cannot be had fails
 * the start (and with it the handshake) with its own error.
 */
class SandboxedStdioTransport implements MessageTransport {
  private inner: MessageTransport | undefined;
  private closed = false;
  onmessage?: ((message: JsonRpcMessage) => void) | undefined;
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  private readonly make: () => Promise<MessageTransport>;

  constructor(make: () => Promise<MessageTransport>) {
    this.make = make;
  }

  async start(): Promise<void> {
    const inner = await this.make();
    if (this.closed) return;
    this.inner = inner;
    inner.onmessage = (m) => this.onmessage?.(m);
    inner.onclose = () => this.onclose?.();
    inner.onerror = (e) => this.onerror?.(e);
    await inner.start();
  }

  async send(message: JsonRpcMessage): Promise<void> {
    if (!this.inner) throw new Error('not started');
    await this.inner.send(message);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.inner?.close();
  }
}
