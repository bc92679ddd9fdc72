import { ConfigError, PortcullisError, UsageError } from '../errors.ts';
import { auditCommand } from './audit.ts';
import { configCommand } from './config.ts';
import { demoCommand } from './demo.ts';
import { keysCommand } from './keys.ts';
import { keysRotateCommand } from './keys-rotate.ts';
import { policyCommand } from './policy.ts';
import { revokeCommand } from './revoke.ts';
import { serveCommand } from './serve.ts';
import { tokenCommand } from './token.ts';
import { wrapCommand } from './wrap.ts';

export const EXIT = { OK: 0, CHECK_FAILED: 1, USAGE: 2 } as const;

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  serve: serveCommand,
  wrap: wrapCommand,
  demo: demoCommand,
  config: configCommand,
  policy: policyCommand,
  token: tokenCommand,
  revoke: revokeCommand,
  audit: auditCommand,
  // `keys rotate` (gateway token keys, identity) beside the audit verifier key commands.
  keys: (a) => (a[0] === 'rotate' ? keysRotateCommand(a.slice(1)) : keysCommand(a)),
};

const USAGE = `Usage: portcullis <command> [options]

Commands:
  serve  --config FILE                 run the gateway
  wrap   --config FILE [--server NAME] speak MCP on stdin/stdout (for local clients)
  demo   [--port N] [--json]           start on the embedded default with bundled upstreams
  config check FILE                    validate a config file
  config schema                        print the config JSON Schema
  policy check|test|explain            validate policies, run policy test cases, explain a decision
  token issue --config FILE --sub S --tools a,b --ttl 10m --reason TEXT   mint a gateway token
  revoke --config FILE --jti X | --sub S | --workload ID   refuse from the next call on
  keys rotate --config FILE            new gateway signing key (old one overlaps)
  audit  <verify|checkpoint|proof|verify-proof|consistency|export|tail|replay> --config FILE
  keys   --config FILE | generate --origin NAME --out FILE   audit verifier key

Exit codes: 0 ok, 1 check failed, 2 usage or config error.`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return name ? EXIT.OK : EXIT.USAGE;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`portcullis: unknown command "${name}"\n\n${USAGE}\n`);
    return EXIT.USAGE;
  }
  try {
    return await command(rest);
  } catch (err) {
    return reportError(err);
  }
}

function reportError(err: unknown): number {
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
