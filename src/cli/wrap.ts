import { loadConfigFile } from '../config/load.ts';
import { UsageError } from '../errors.ts';
import { Gateway } from '../gateway.ts';
import { localPrincipal } from '../identity/local.ts';
import { createLogger } from '../observability/log.ts';
import { serveStdio } from '../transport/stdio-listener.ts';
import { parseCommandArgs, required } from './args.ts';

/**
 * stdin/stdout MCP for local clients that launch a command (Claude Desktop,
 * Cursor). `--server NAME` exposes just that upstream of the config.
 */
export async function wrapCommand(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(args, {
    config: { type: 'string', short: 'c' },
    server: { type: 'string', short: 's' },
  });
  const loaded = loadConfigFile(required(values.config, '--config'));
  if (values.server !== undefined) {
    const only = loaded.config.upstreams[values.server];
    if (!only) throw new UsageError(`--server: no upstream named "${values.server}" in the config`);
    loaded.config.upstreams = { [values.server]: only };
  }
  const log = createLogger(loaded.config.log.level);
  const gateway = new Gateway(loaded, { log });
  const principal = await localPrincipal(loaded, gateway.identity);
  await serveStdio(gateway, {
    input: process.stdin,
    output: process.stdout,
    maxLineBytes: loaded.config.listen.maxBodyBytes,
    maxDepth: loaded.config.listen.maxJsonDepth,
    principal,
    log,
  });
  await gateway.close();
  return 0;
}
