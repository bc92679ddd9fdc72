#!/usr/bin/env node
/**
 * Runs the MCP server conformance suites against Portcullis.
 *
 *   npm run conformance                      # the gateway, fronting the fixture over stdio
 *   npm run conformance -- --target direct   # the fixture itself, over HTTP (no gateway)
 *   npm run conformance -- --only 0.2        # one suite: 0.1 | 0.2
 *   npm run conformance -- --verbose         # stream the suites' own output
 *
 * `CONFORMANCE_TARGET=direct` works like `--target direct`.
 *
 * Suites, in order:
 *   0.1  @modelcontextprotocol/conformance 0.1.16, active server suite (2025-11-25 wire)
 *   0.2  @modelcontextprotocol/conformance 0.2.0-alpha.12, --requirements 2026-07-28
 * each with its baseline from conformance/expected-failures-0.{1,2}.yaml.
 *
 * Exits non-zero when a suite reports an unexpected failure or a stale
 * baseline entry, or when the target cannot be started. Child processes are
 * always killed (process groups, so the gateway's upstream goes too).
 */

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  createWriteStream,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { stripVTControlCharacters } from 'node:util';
import { parse as parseYaml, stringify as toYaml } from 'yaml';

const ROOT = resolve(import.meta.dirname, '..');
const NODE = process.execPath;
const FIXTURE = 'test/fixtures/conformance-server.ts';

// ===========================================================================
// Gateway under test. Adjust the command and the config here.
// `{config}` is replaced by the path of the generated YAML config file.
// ===========================================================================

const GATEWAY_COMMAND = [NODE, 'bin/portcullis.js', 'serve', '--config', '{config}'];

/**
 * The gateway config; `port` is a free port picked by this script. The
 * suites send no credentials and need every fixture tool, resource and prompt
 * reachable (dns-rebinding-protection even expects 2xx for a plain localhost
 * request), so run without authentication and with an allow-all policy.
 */
function gatewayConfig(port) {
  return {
    listen: { host: '127.0.0.1', port, path: '/mcp' },
    upstreams: {
      conf: {
        transport: 'stdio',
        command: NODE,
        args: [join(ROOT, FIXTURE), '--stdio'],
        // The suites call tools by their bare names (test_simple_text, ...),
        // so the single upstream must be exposed without the `conf__` prefix.
        prefix: '',
        // The suites exercise sampling, elicitation and roots: only a session's own instance relays them.
        isolation: 'session',
      },
    },
    policy: { files: [join(ROOT, 'policies/permit-all-FOR-TESTS-ONLY.cedar')] },
    // Every scenario is the same (anonymous) caller opening sessions it may never delete.
    limits: { sessionsPerPrincipal: 1000, instancesPerPrincipal: 1000, instancesTotal: 1000 },
  };
}

// ===========================================================================
// Suites
// ===========================================================================

const SUITES = [
  {
    id: '0.1',
    title: '@modelcontextprotocol/conformance 0.1.16 (2025-11-25, active suite)',
    cli: 'node_modules/conformance/dist/index.js',
    args: [],
    baseline: 'conformance/expected-failures-0.1.yaml',
  },
  {
    id: '0.2',
    title: '@modelcontextprotocol/conformance 0.2.0-alpha.12 (--requirements 2026-07-28)',
    cli: 'node_modules/conformance-next/dist/index.js',
    args: ['--requirements', '2026-07-28'],
    baseline: 'conformance/expected-failures-0.2.yaml',
    requirements: 'node_modules/conformance-next/requirements/2026-07-28.yaml',
  },
];

const READY_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------
// CLI options
// ---------------------------------------------------------------------------

function parseOptions(argv) {
  const options = { target: process.env.CONFORMANCE_TARGET || 'gateway', only: undefined, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--target') options.target = argv[++i];
    else if (arg.startsWith('--target=')) options.target = arg.slice('--target='.length);
    else if (arg === '--only') options.only = argv[++i];
    else if (arg === '--verbose') options.verbose = true;
    else if (arg === '--help' || arg === '-h') options.help = true;
    else throw new Error(`unknown argument: ${arg}`);
  }
  if (!['gateway', 'direct'].includes(options.target)) {
    throw new Error(`--target must be "gateway" or "direct", got "${options.target}"`);
  }
  if (options.only && !SUITES.some((suite) => suite.id === options.only)) {
    throw new Error(`--only must be one of ${SUITES.map((suite) => suite.id).join(', ')}`);
  }
  return options;
}

// ---------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------

const children = new Set();

/** Spawns in its own process group so the whole tree can be killed. */
function spawnChild(command, args, options = {}) {
  const child = spawn(command, args, {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...options,
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function killTree(child, signal = 'SIGTERM') {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  killTree(child, 'SIGTERM');
  const timer = setTimeout(() => killTree(child, 'SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

function killAllChildren() {
  for (const child of children) killTree(child, 'SIGKILL');
}

process.on('exit', killAllChildren);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    killAllChildren();
    process.exit(130);
  });
}

// ---------------------------------------------------------------------------
// Starting the target and waiting until it listens
// ---------------------------------------------------------------------------

async function freePort() {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

function canConnect(port) {
  return new Promise((resolvePromise) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolvePromise(true);
    });
    socket.once('error', () => resolvePromise(false));
  });
}

/** The `url` of a `{"event":"listening","url":...}` stdout line, if it is one. */
function listeningUrl(line) {
  try {
    const message = JSON.parse(line);
    return message?.event === 'listening' && typeof message.url === 'string' ? message.url : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Resolves with the MCP URL once the child prints a listening line, or once
 * `port` accepts connections (whichever comes first). Rejects if the child
 * exits or the timeout passes. The child's output goes to `logFile`.
 */
function waitUntilListening(child, port, logFile) {
  const log = createWriteStream(logFile);
  child.stderr.pipe(log);
  const lines = createInterface({ input: child.stdout });
  return new Promise((resolvePromise, reject) => {
    let settled = false;
    const settle = (error, url) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearInterval(poller);
      if (error) reject(error);
      else resolvePromise(url);
    };
    lines.on('line', (line) => {
      log.write(`${line}\n`);
      const url = listeningUrl(line);
      if (url) settle(undefined, url);
    });
    child.once('exit', (code, signal) =>
      settle(new Error(`target exited before listening (code ${code}, signal ${signal}); see ${logFile}`)),
    );
    const poller = setInterval(async () => {
      if (await canConnect(port)) settle(undefined, `http://127.0.0.1:${port}/mcp`);
    }, 200);
    const timer = setTimeout(
      () => settle(new Error(`target not listening after ${READY_TIMEOUT_MS}ms; see ${logFile}`)),
      READY_TIMEOUT_MS,
    );
  });
}

async function startTarget(target, workDir) {
  const port = await freePort();
  let command;
  if (target === 'direct') {
    command = [NODE, FIXTURE, '--port', String(port)];
  } else {
    const configFile = join(workDir, 'portcullis.conformance.yaml');
    writeFileSync(configFile, toYaml(gatewayConfig(port)));
    command = GATEWAY_COMMAND.map((part) => part.replaceAll('{config}', configFile));
  }
  console.log(`Starting ${target === 'direct' ? 'fixture' : 'gateway'}: ${command.join(' ')}`);
  const child = spawnChild(command[0], command.slice(1));
  const url = await waitUntilListening(child, port, join(workDir, `${target}.log`));
  console.log(`Listening at ${url}\n`);
  return { child, url };
}

// ---------------------------------------------------------------------------
// Running a suite and summarising its results
// ---------------------------------------------------------------------------

async function runSuite(suite, url, workDir, verbose) {
  const outputDir = join(workDir, `results-${suite.id}`);
  const args = [
    suite.cli,
    'server',
    '--url',
    url,
    ...suite.args,
    '--expected-failures',
    suite.baseline,
    '-o',
    outputDir,
  ];
  console.log(`=== ${suite.title}`);
  console.log(`    node ${args.join(' ')}`);
  const child = spawnChild(NODE, args);
  const output = [];
  const collect = (stream) =>
    stream.on('data', (chunk) => {
      output.push(chunk);
      if (verbose) process.stdout.write(chunk);
    });
  collect(child.stdout);
  collect(child.stderr);
  const [code] = await once(child, 'exit');
  const text = Buffer.concat(output).toString('utf8');
  writeFileSync(join(workDir, `suite-${suite.id}.log`), text);
  return { code: code ?? 1, text, outputDir };
}

/** Per-scenario check counts read from the suite's `-o` directory. */
function readScenarioResults(outputDir) {
  if (!existsSync(outputDir)) return [];
  return readdirSync(outputDir)
    .filter((dir) => existsSync(join(outputDir, dir, 'checks.json')))
    .map((dir) => {
      const checks = JSON.parse(readFileSync(join(outputDir, dir, 'checks.json'), 'utf8'));
      const count = (status) => checks.filter((check) => check.status === status).length;
      const failures = checks.filter((check) => check.status === 'FAILURE').map((check) => check.id);
      const scenario = dir.replace(/^server-/, '').replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, '');
      return {
        scenario,
        passed: count('SUCCESS'),
        failed: count('FAILURE'),
        warnings: count('WARNING'),
        failures,
      };
    })
    .sort((a, b) => a.scenario.localeCompare(b.scenario));
}

function scoredScenarios(suite) {
  if (!suite.requirements) return undefined;
  const requirements = parseYaml(readFileSync(join(ROOT, suite.requirements), 'utf8'));
  return new Set(requirements.server ?? []);
}

/** The suite's own baseline verdict lines (expected/unexpected/stale). */
function baselineLines(text) {
  const plain = stripVTControlCharacters(text);
  const start = plain.lastIndexOf('=== SUMMARY ===');
  return start === -1
    ? []
    : plain
        .slice(start)
        .split('\n')
        .filter((line) => /baseline|unexpected|stale|expected failures|^\s+[✗✓-] /i.test(line));
}

function summarise(suite, run) {
  const results = readScenarioResults(run.outputDir);
  const scored = scoredScenarios(suite);
  const groups = scored
    ? [
        ['scored', results.filter((r) => scored.has(r.scenario))],
        ['not scored', results.filter((r) => !scored.has(r.scenario))],
      ]
    : [['scenarios', results]];
  const totals = { scenarios: 0, scenariosFailed: 0, checksPassed: 0, checksFailed: 0 };
  for (const [label, group] of groups) {
    const failing = group.filter((r) => r.failed > 0);
    const checksPassed = group.reduce((sum, r) => sum + r.passed, 0);
    const checksFailed = group.reduce((sum, r) => sum + r.failed, 0);
    console.log(
      `    ${label}: ${group.length - failing.length}/${group.length} scenarios passed ` +
        `(${checksPassed} checks passed, ${checksFailed} failed)`,
    );
    if (label !== 'not scored') {
      for (const r of failing) console.log(`      ✗ ${r.scenario}: ${r.failures.join(', ')}`);
      totals.scenarios += group.length;
      totals.scenariosFailed += failing.length;
      totals.checksPassed += checksPassed;
      totals.checksFailed += checksFailed;
    }
  }
  for (const line of baselineLines(run.text)) console.log(`    ${line.trim()}`);
  console.log(`    suite exit code: ${run.code}\n`);
  return totals;
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

async function main() {
  const options = parseOptions(process.argv.slice(2));
  if (options.help) {
    console.log('usage: node scripts/conformance.js [--target gateway|direct] [--only 0.1|0.2] [--verbose]');
    return 0;
  }
  const workDir = mkdtempSync(join(tmpdir(), 'portcullis-conformance-'));
  const suites = SUITES.filter((suite) => !options.only || suite.id === options.only);
  let target;
  let failed = false;
  const grand = { scenarios: 0, scenariosFailed: 0, checksPassed: 0, checksFailed: 0 };
  try {
    target = await startTarget(options.target, workDir);
    for (const suite of suites) {
      const run = await runSuite(suite, target.url, workDir, options.verbose);
      const totals = summarise(suite, run);
      for (const key of Object.keys(grand)) grand[key] += totals[key];
      if (run.code !== 0) failed = true;
    }
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    failed = true;
  } finally {
    if (target) await stopChild(target.child);
    killAllChildren();
  }
  console.log(
    `TOTAL (${options.target}): ${grand.scenarios - grand.scenariosFailed}/${grand.scenarios} scored scenarios passed, ` +
      `${grand.checksPassed} checks passed, ${grand.checksFailed} failed`,
  );
  if (failed) {
    console.log(`FAILED: logs and per-check results kept in ${workDir}`);
    return 1;
  }
  rmSync(workDir, { recursive: true, force: true });
  console.log('PASSED: no unexpected failures');
  return 0;
}

process.exitCode = await main();
