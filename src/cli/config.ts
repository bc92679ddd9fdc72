import { loadConfigFile } from '../config/load.ts';
import { configJsonSchema } from '../config/schema.ts';
import { ambientSecrets } from '../credentials/static.ts';
import { UsageError } from '../errors.ts';

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
    for (const a of ambientSecrets(config.upstreams))
      process.stdout.write(
        `warning: ambient authority: upstream ${a.upstream} ${a.where} = ${a.reference}\n`,
      );
    return 0;
  }
  throw new UsageError('usage: portcullis config check FILE | portcullis config schema');
}
