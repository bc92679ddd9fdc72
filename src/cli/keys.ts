import { writeFileSync } from 'node:fs';
import { generateSignerKey, parseSignerKey } from '../audit/note.ts';
import { auditSigner } from '../audit/open.ts';
import { UsageError } from '../errors.ts';
import { createLogger } from '../observability/log.ts';
import { parseCommandArgs, required } from './args.ts';
import { auditSetupFromConfig } from './audit-store.ts';

/**
 * `keys --config FILE` prints the audit log's verifier key (`name+id+key`);
 * `keys generate --origin NAME --out FILE` writes a new signer key and prints its verifier key.
 */
export async function keysCommand(args: string[]): Promise<number> {
  if (args[0] === 'generate') {
    const { values } = parseCommandArgs(args.slice(1), {
      origin: { type: 'string' },
      out: { type: 'string' },
    });
    const skey = generateSignerKey(required(values.origin, '--origin'));
    writeFileSync(required(values.out, '--out'), `${skey}\n`, { mode: 0o600, flag: 'wx' });
    process.stdout.write(`${parseSignerKey(skey).verifierKey}\n`);
    return 0;
  }
  const { values } = parseCommandArgs(args, { config: { type: 'string' } });
  if (!values.config) throw new UsageError('keys: --config FILE is required');
  const setup = auditSetupFromConfig(values.config);
  process.stdout.write(`${auditSigner(setup, createLogger('warn')).verifierKey}\n`);
  return 0;
}
