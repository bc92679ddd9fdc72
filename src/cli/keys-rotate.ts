import { loadConfigFile } from '../config/load.ts';
import { gatewayKeyDir } from '../identity/service.ts';
import { AS_OPTION, adminAct, adminActor, recordAdminAct } from './admin-audit.ts';
import { parseCommandArgs, required } from './args.ts';

/** `portcullis keys rotate`: a new gateway signing key; the old one verifies for one more token lifetime. */
export async function keysRotateCommand(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(args, { config: { type: 'string', short: 'c' }, ...AS_OPTION });
  const loaded = loadConfigFile(required(values.config, '--config'));
  const actor = adminActor(loaded, values.as);
  const identity = loaded.config.identity;
  const result = gatewayKeyDir(identity, loaded.baseDir).rotate(identity.gatewayTokens.maxTtlSeconds);
  process.stdout.write(`${JSON.stringify({ event: 'keys-rotated', ...result })}\n`);
  await recordAdminAct(
    loaded,
    adminAct('token-keys-rotated', actor, result, { what: `token signing key ${result.kid} is in use` }),
  );
  return 0;
}
