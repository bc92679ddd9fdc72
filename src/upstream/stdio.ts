import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import type { StdioUpstreamConfig } from '../config/schema.ts';
import { resolveValue } from '../config/secrets.ts';
import { CREDENTIAL_PLACEHOLDER } from '../credentials/config.ts';
import type { Logger } from '../observability/log.ts';
import type { MessageTransport } from './transport.ts';

/**
 * Spawns a stdio upstream with a scrubbed environment: the SDK's short list of
 * harmless variables (PATH, HOME, USER, SHELL, TERM, LOGNAME) plus exactly the
 * ones the config names, plus `credential`, minted for this one process (its
 * configured variable also replaces `${credential}` in `args`). Nothing else
 * of the gateway's environment is inherited.
 */
export function stdioTransport(
  name: string,
  cfg: StdioUpstreamConfig,
  baseDir: string,
  log: Logger,
  credential: Readonly<Record<string, string>> = {},
  /** The file to spawn: the command as server pinning resolved and checked it. */
  executable: string = cfg.command,
): MessageTransport {
  const configured = Object.entries(cfg.env).map(([k, v]) => [k, resolveValue(v, baseDir)]);
  const env = { ...Object.fromEntries(configured), ...credential };
  const transport = new StdioClientTransport({
    command: executable,
    args: withCredential(cfg, credential),
    env,
    cwd: cfg.cwd ? resolve(baseDir, cfg.cwd) : baseDir,
    stderr: 'pipe',
  });
  const stderr = transport.stderr as Readable | null;
  if (stderr) {
    createInterface({ input: stderr }).on('line', (line) =>
      log.debug('upstream stderr', { upstream: name, line }),
    );
  }
  return transport as unknown as MessageTransport;
}

/** `args` with `${credential}` replaced by the credential's variable; refused when there is none to put there. */
function withCredential(cfg: StdioUpstreamConfig, credential: Readonly<Record<string, string>>): string[] {
  if (!cfg.args.some((a) => a.includes(CREDENTIAL_PLACEHOLDER))) return cfg.args;
  const value = cfg.credentials?.kind === 'postgres-role' ? credential[cfg.credentials.env] : undefined;
  if (value === undefined)
    throw new Error(`${CREDENTIAL_PLACEHOLDER} in args, and no credential to put there`);
  return cfg.args.map((a) => a.replaceAll(CREDENTIAL_PLACEHOLDER, value));
}
