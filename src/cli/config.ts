import { loadConfigFile } from '../config/load.ts';
import { configJsonSchema } from '../config/schema.ts';
import { UsageError } from '../errors.ts';
import { sandboxWarnings } from '../sandbox/risks.ts';

export async function configCommand(args: string[]): Promise<number> {
  const [sub, file] = args;
  if (sub === 'schema') {
    process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    return 0;
  }
  if (sub === 'check') {
    if (!file) throw new UsageError('config check needs a FILE');
    const { config } = loadConfigFile(file);
    process.stdout.write(`${file}: valid (${Object.keys(config.upstreams).length} upstream(s))\n`);
    for (const warning of sandboxWarnings(config)) process.stdout.write(`warning: ${warning}\n`);
    return 0;
  }
  throw new UsageError('usage: portcullis config check FILE | portcullis config schema');
}
