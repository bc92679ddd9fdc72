import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import type { StdioUpstreamConfig } from '../config/schema.ts';
import { resolveValue } from '../config/secrets.ts';
import type { Logger } from '../observability/log.ts';
import type { MessageTransport } from './transport.ts';

/**
 * Spawns a stdio upstream with a scrubbed environment: the SDK's short list of
 * harmless variables (PATH, HOME, USER, SHELL, TERM, LOGNAME) plus exactly the
 * ones the config names. Nothing else of the gateway's environment is inherited.
 */
export function stdioTransport(
  name: string,
  cfg: StdioUpstreamConfig,
  baseDir: string,
  log: Logger,
): MessageTransport {
  const env = Object.fromEntries(Object.entries(cfg.env).map(([k, v]) => [k, resolveValue(v, baseDir)]));
  const transport = new StdioClientTransport({
    command: cfg.command,
    args: cfg.args,
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
