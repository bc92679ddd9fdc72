#!/usr/bin/env node
/**
 * What a sandbox costs a stdio upstream at start, in ms from spawn to its
 * answer to `initialize` (the bench's echo server, and the real memory server):
 *   node bench/sandbox-bench.ts
 * - plain node (sandbox: off);
 * - bubblewrap alone (namespaces, read-only root, hidden state; no limits);
 * - bubblewrap + prlimit + env, what `network: none` runs (the default): the
 *   memory limit a cgroup per process where the machine has one, joined by
 *   `sh` before bwrap, and the same with RLIMIT_DATA instead, to show its cost;
 * - the same with the allowlist bridge (a second node process in the sandbox).
 * Per-call cost is the bench's `portcullis-full-stdio-sandboxed` target beside
 * `portcullis-full-stdio`.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { sandboxSchema } from '../src/sandbox/config.ts';
import { detectSandboxHost, type SandboxHost } from '../src/sandbox/host.ts';
import { sandboxMode, UpstreamSandbox } from '../src/sandbox/launch.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ECHO = join(ROOT, 'bench/echo-server.ts');
const require = createRequire(import.meta.url);
const MEMORY = join(
  dirname(require.resolve('@modelcontextprotocol/server-memory/package.json')),
  'dist/index.js',
);
const RUNS = Number(process.env.SANDBOX_BENCH_RUNS ?? 12);
const INIT = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } },
});

type Run = { command: string; args: string[]; env: Record<string, string>; exited?: () => void };

async function startUp(run: Run): Promise<number> {
  const t = performance.now();
  const child = spawn(run.command, run.args, {
    env: { PATH: process.env.PATH ?? '', ...run.env },
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  child.stdin.write(`${INIT}\n`);
  await new Promise((resolve) => createInterface({ input: child.stdout }).once('line', resolve));
  const ms = performance.now() - t;
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  run.exited?.();
  return ms;
}

async function series(label: string, make: () => Promise<Run>): Promise<void> {
  const times: number[] = [];
  for (let i = 0; i < RUNS + 2; i++) times.push(await startUp(await make()));
  const kept = times.slice(2).sort((a, b) => a - b);
  const median = kept[Math.floor(kept.length / 2)]!;
  console.log(`${label}: ${median.toFixed(1)} ms median start-up (min ${kept[0]!.toFixed(1)})`);
}

const host = detectSandboxHost();
if (!host.available) {
  console.log(`sandbox start-up: skipped (${host.reason})`);
  process.exit(0);
}
const rlimitHost = detectSandboxHost({ cgroups: false });
const sandbox = (config: unknown, on: SandboxHost = host) =>
  new UpstreamSandbox({
    upstream: 'bench',
    mode: sandboxMode(sandboxSchema.parse(config), on),
    host: on,
    hidden: [],
    egressDecided: () => {},
    egressRecordable: () => true,
  });
const none = sandbox({});
// Node 24+ needs ~600 MB of RLIMIT_DATA just to start (V8's CodeRange): the default 2,048 MB.
const noneRlimit = sandbox({}, rlimitHost);
const allow = sandbox({ network: { allow: ['example.com'] } });
for (const [name, script] of [
  ['echo', ECHO],
  ['memory', MEMORY],
] as const) {
  const args = name === 'echo' ? [script, '--stdio'] : [script];
  const spawnArgs = { command: process.execPath, args, cwd: ROOT, path: process.env.PATH ?? '' };
  await series(`${name}, plain node`, async () => ({ command: process.execPath, args, env: {} }));
  await series(`${name}, bubblewrap without limits`, async () => {
    const full = await none.wrap(spawnArgs);
    const at = full.args.indexOf(host.prlimit);
    return { command: full.command, args: [...full.args.slice(0, at), process.execPath, ...args], env: {} };
  });
  const memory = host.memory ? `memory cgroup v${host.memory.version}` : 'RLIMIT_DATA';
  await series(`${name}, bubblewrap + prlimit, ${memory} (network none)`, () => none.wrap(spawnArgs));
  if (host.memory)
    await series(`${name}, bubblewrap + prlimit, RLIMIT_DATA (network none)`, () =>
      noneRlimit.wrap(spawnArgs),
    );
  await series(`${name}, bubblewrap + prlimit + bridge (allowlist)`, () => allow.wrap(spawnArgs));
}
await Promise.all([none.close(), noneRlimit.close(), allow.close()]);
