#!/usr/bin/env node
/**
 * Portcullis benchmark: interleaved A/B of one trivial MCP tool call
 * (`echo`) through several targets on loopback. See bench/README.md.
 *
 *   npm run bench                       # quick run (~3-4 minutes)
 *   BENCH_SECONDS=10 BENCH_ROUNDS=5 npm run bench
 *   npm run bench -- --soak             # memory soak only (10 min at 8 callers)
 *   npm run bench -- --instructions     # instructions per call under callgrind (load-independent)
 *   npm run bench -- --scale            # the scale targets: 1,000 tools, 10,000 policies, large audit logs, idle sessions
 *
 * The load generator runs in this process (plain `node:http` keep-alive
 * requests speaking MCP, or newline JSON on a child's stdio); every server,
 * gateway and peer proxy runs as a child process, killed on exit. The work is
 * split by job under bench/lib/: settings, processes, load (the callers),
 * targets, measure (/proc CPU and memory), stages, checks, report, micro, runs
 * and soak.
 */
import { cleanupFixtures } from './gateway-configs.ts';
import { instructionsRun } from './lib/instructions.ts';
import { installExitHandlers, stopAll } from './lib/processes.ts';
import { abRun, checkConfigsRun, microRun } from './lib/runs.ts';
import { scaleRun } from './lib/scale.ts';
import { ALL_TARGETS, die, flags, SETTINGS, USAGE } from './lib/settings.ts';
import { soakRun } from './lib/soak.ts';
import { preparedFixtures, TARGETS } from './lib/targets.ts';

if (flags.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
{
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  if (major < 22 || (major === 22 && minor < 18)) {
    die(`Node.js >= 22.18 is required (this is ${process.version}); run it as \`npm run bench\``);
  }
}
if (process.platform !== 'linux') die('reads /proc for CPU and memory figures: Linux only');
for (const name of SETTINGS.targets) {
  if (!TARGETS[name]) die(`unknown target ${name} (known: ${ALL_TARGETS.join(', ')})`);
}
if (SETTINGS.concurrency.some((c) => !Number.isInteger(c) || c < 1))
  die('BENCH_CONCURRENCY: positive integers');

installExitHandlers();
try {
  if (flags['check-configs']) await checkConfigsRun();
  else if (flags.micro) await microRun();
  else if (flags.soak) await soakRun();
  else if (flags.instructions) await instructionsRun();
  else if (flags.scale) await scaleRun();
  else await abRun();
} catch (err) {
  process.stderr.write(`bench: ${(err as Error)?.stack ?? err}\n`);
  process.exitCode = 1;
} finally {
  await stopAll();
  const fixtures = preparedFixtures();
  if (fixtures)
    await cleanupFixtures(fixtures).catch((err: unknown) => process.stderr.write(`bench: cleanup: ${err}\n`));
}
