import { loadConfigFile } from '../config/load.ts';
import { createLogger } from '../observability/log.ts';
import { startGateway, untilSignal } from '../server.ts';
import { parseCommandArgs, required } from './args.ts';
import { closeOnStop } from './shutdown.ts';

export async function serveCommand(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(args, { config: { type: 'string', short: 'c' } });
  const loaded = loadConfigFile(required(values.config, '--config'));
  const log = createLogger(loaded.config.log.level);
  const running = await startGateway(loaded, log);
  // Refuse to start rather than deny every call when the audit log cannot be opened.
  await running.gateway.audit.ready.catch(async (err) => {
    await running.close();
    throw err;
  });
  const ready = { event: 'listening', url: running.listener.url, adminUrl: running.admin?.url };
  // Whoever reads the line below may stop us at once: the handlers are in place first.
  const stopped = untilSignal();
  process.stdout.write(`${JSON.stringify(ready)}\n`);
  await stopped;
  await closeOnStop(running, log);
  return 0;
}
