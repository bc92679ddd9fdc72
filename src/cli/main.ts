import { YamlSyntaxError } from '../config/load.ts';
import { ConfigError, PortcullisError, UsageError } from '../errors.ts';
import { approvalsCommand } from './approvals.ts';
import { attestCommand } from './attest.ts';
import { auditCommand } from './audit.ts';
import { breakglassCommand } from './breakglass.ts';
import { configCommand } from './config.ts';
import { demoCommand } from './demo.ts';
import { keysCommand } from './keys.ts';
import { keysRotateCommand } from './keys-rotate.ts';
import { policyCommand } from './policy.ts';
import { revokeCommand } from './revoke.ts';
import { serveCommand } from './serve.ts';
import { serversCommand } from './servers.ts';
import { tokenCommand } from './token.ts';
import { toolsCommand } from './tools.ts';
import { helpFor, MAIN_USAGE } from './usage.ts';
import { wrapCommand } from './wrap.ts';

export const EXIT = { OK: 0, CHECK_FAILED: 1, USAGE: 2 } as const;

export const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  serve: serveCommand,
  wrap: wrapCommand,
  demo: demoCommand,
  config: configCommand,
  policy: policyCommand,
  token: tokenCommand,
  revoke: revokeCommand,
  audit: auditCommand,
  approvals: approvalsCommand,
  breakglass: breakglassCommand,
  tools: toolsCommand,
  servers: serversCommand,
  attest: attestCommand,
  // `keys rotate` (gateway token keys, identity) beside the audit verifier key commands.
  keys: (a) => (a[0] === 'rotate' ? keysRotateCommand(a.slice(1)) : keysCommand(a)),
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help') {
    process.stdout.write(`${MAIN_USAGE}\n`);
    return name ? EXIT.OK : EXIT.USAGE;
  }
  const help = helpFor(argv);
  if (help) {
    process.stdout.write(`${help}\n`);
    return EXIT.OK;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`portcullis: unknown command "${name}"\n\n${MAIN_USAGE}\n`);
    return EXIT.USAGE;
  }
  try {
    return await command(rest);
  } catch (err) {
    return reportError(err);
  }
}

function reportError(err: unknown): number {
  if (err instanceof YamlSyntaxError) {
    process.stderr.write(`${err.message}\n`);
    return EXIT.USAGE;
  }
  if (err instanceof ConfigError || err instanceof UsageError) {
    process.stderr.write(`portcullis: ${err.message}\n`);
    return EXIT.USAGE;
  }
  if (err instanceof PortcullisError) {
    process.stderr.write(`portcullis: [${err.code}] ${err.message}\n`);
    return err.code.startsWith('ERR_CONFIG') || err.code === 'ERR_SECRET_UNRESOLVED'
      ? EXIT.USAGE
      : EXIT.CHECK_FAILED;
  }
  process.stderr.write(`portcullis: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return EXIT.CHECK_FAILED;
}
