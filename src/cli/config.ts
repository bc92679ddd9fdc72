import { loadConfigFile } from '../config/load.ts';
import { type Config, configJsonSchema } from '../config/schema.ts';
import { CREDENTIAL_PLACEHOLDER } from '../credentials/config.ts';
import { ambientSecrets } from '../credentials/static.ts';
import { UsageError } from '../errors.ts';
import { sandboxWarnings } from '../sandbox/risks.ts';
import { exactVersion, npxRequest } from '../serverpin/npx.ts';

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
    for (const a of ambientSecrets(config.upstreams))
      process.stdout.write(
        `warning: ambient authority: upstream ${a.upstream} ${a.where} = ${a.reference}\n`,
      );
    for (const warning of serverPinWarnings(config)) process.stderr.write(`warning: ${warning}\n`);
    for (const warning of credentialInArgs(config)) process.stdout.write(`warning: ${warning}\n`);
    return 0;
  }
  throw new UsageError('usage: portcullis config check FILE | portcullis config schema');
}

/** A minted password in `args` is in the process table: every local user can read /proc/PID/cmdline. */
function credentialInArgs(config: Config): string[] {
  const out: string[] = [];
  for (const [name, up] of Object.entries(config.upstreams)) {
    if (up.transport !== 'stdio') continue;
    const at = up.args.findIndex((a) => a.includes(CREDENTIAL_PLACEHOLDER));
    if (at >= 0)
      out.push(
        `upstreams.${name}.args.${at}: ${CREDENTIAL_PLACEHOLDER} puts the minted database password on the command line, readable by every local user (/proc/PID/cmdline); prefer the credential's env variable where the server reads one`,
      );
  }
  return out;
}

/**
 * Stdio upstreams the config does not pin: each is pinned on first use (trust
 * on first use, in the state store); an npx spec without an exact version may
 * be fetched anew at a start, after the pin check looked at what was installed.
 */
function serverPinWarnings(config: Config): string[] {
  const out: string[] = [];
  for (const [name, up] of Object.entries(config.upstreams)) {
    if (up.transport !== 'stdio') continue;
    if (!up.pin)
      out.push(
        `upstreams.${name}: no pin in the config; the state store pins it at first use (or: portcullis servers pin ${name})`,
      );
    const spec = npxSpec(up.command, up.args);
    if (spec !== undefined && !exactVersion(spec))
      out.push(
        `upstreams.${name}: npx ${spec} names no exact version (pkg@1.2.3); npx may fetch another at start`,
      );
  }
  return out;
}

function npxSpec(command: string, args: readonly string[]): string | undefined {
  if (command !== 'npx' && !command.endsWith('/npx')) return undefined;
  try {
    return npxRequest(args).packages[0];
  } catch {
    return undefined;
  }
}
