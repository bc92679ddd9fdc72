#!/usr/bin/env node
/**
 * Portcullis benchmark: interleaved A/B of one trivial MCP tool call
 * (`echo`) through several targets on loopback. See bench/README.md.
 *
 *   npm run bench                       # quick run (~3-4 minutes)
 *   BENCH_SECONDS=10 BENCH_ROUNDS=5 npm run bench
 *   npm run bench -- --soak             # memory soak only (10 min at 8 callers)
 *
 * The load generator runs in this process (plain `node:http` keep-alive
 * requests speaking MCP, or newline JSON on a child's stdio); every server,
 * gateway and peer proxy runs as a child process, killed on exit.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import {
  cleanupFixtures,
  fullPipelineConfig,
  fullPipelinePostgresConfig,
  openGatewayConfig,
  passThroughConfig,
  prepareFixtures,
} from './gateway-configs.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ECHO_SERVER = path.join(ROOT, 'bench', 'echo-server.js');
const NODE_HOP = path.join(ROOT, 'bench', 'node-hop.js');
const GATEWAY_BIN = path.join(ROOT, 'bin', 'portcullis.js');
const RESULTS_DIR = path.join(ROOT, 'bench', 'results');
const NODE = process.execPath;
const PROTOCOL_VERSION = '2025-11-25';
const CALL_TIMEOUT_MS = 15_000;
/** Longer than a gateway's default 30 s upstream timeout, so a slow first handshake shows up as a figure. */
const INIT_TIMEOUT_MS = 60_000;
const START_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

const { values: flags } = parseArgs({
  options: {
    soak: { type: 'boolean', default: false },
    micro: { type: 'boolean', default: false },
    'check-configs': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

const ALL_TARGETS = [
  'direct-http',
  'direct-stdio',
  'node-hop',
  'portcullis-full',
  'portcullis-full-pg',
  'portcullis-pass',
  'portcullis-full-stdio',
  'portcullis-open',
  'mcp-proxy',
  'supergateway',
];
const DEFAULT_TARGETS = ALL_TARGETS.filter((t) => t !== 'portcullis-open');

const num = (name, def) => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) die(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return n;
};
const list = (name, def) => {
  const raw = process.env[name];
  return raw
    ? raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : def;
};

const SETTINGS = {
  seconds: num('BENCH_SECONDS', 3),
  rounds: Math.round(num('BENCH_ROUNDS', 3)),
  concurrency: list('BENCH_CONCURRENCY', ['1', '8', '32']).map(Number),
  warmupSeconds: num('BENCH_WARMUP_SECONDS', 3),
  targets: list('BENCH_TARGETS', DEFAULT_TARGETS),
  peerDir: process.env.BENCH_PEER_DIR || undefined,
  soakSeconds: num('BENCH_SOAK_SECONDS', 600),
  soakConcurrency: Math.round(num('BENCH_SOAK_CONCURRENCY', 8)),
  soakSampleSeconds: num('BENCH_SOAK_SAMPLE_SECONDS', 10),
  soakTargets: list('BENCH_SOAK_TARGETS', ['portcullis-full']),
  /** Micro-benchmarks (bench/*-bench.js) after the A/B run: "off" skips them. */
  micro: process.env.BENCH_MICRO !== 'off',
  microTimeoutSeconds: num('BENCH_MICRO_TIMEOUT_SECONDS', 120),
  /** Extra node flags for the Portcullis processes only, e.g. "--cpu-prof --cpu-prof-dir=bench/results/prof". */
  gatewayNodeArgs: (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean),
};

const USAGE = `usage: npm run bench [-- --soak | --micro | --check-configs]

environment:
  BENCH_SECONDS=3            seconds per measurement (one target, one concurrency, one round)
  BENCH_ROUNDS=3             rounds; each round visits every target at every concurrency
  BENCH_CONCURRENCY=1,8,32   concurrent callers
  BENCH_WARMUP_SECONDS=3     untimed warm-up per target and concurrency after start
  BENCH_TARGETS=...          subset of ${ALL_TARGETS.join(',')}
  BENCH_PEER_DIR=DIR         take mcp-proxy / supergateway from DIR/node_modules (default: the project's)
  BENCH_GATEWAY_NODE_ARGS=.. extra node flags for the Portcullis processes (e.g. --cpu-prof)
  BENCH_MICRO=off            skip the micro-benchmarks (bench/*-bench.js) after the A/B run
  BENCH_MICRO_TIMEOUT_SECONDS=120  per micro-benchmark
  --micro                    run only the micro-benchmarks
  --check-configs            write each gateway variant's config and run \`portcullis config check\` on it
                             (BENCH_SHOW_CONFIGS=1 prints them)
  --soak                     run only the memory soak instead:
  BENCH_SOAK_SECONDS=600     soak length per target
  BENCH_SOAK_CONCURRENCY=8   soak callers
  BENCH_SOAK_SAMPLE_SECONDS=10
  BENCH_SOAK_TARGETS=portcullis-full
`;

const BENCH_T0 = performance.now();
/** A progress line on stderr, stamped with the time since the bench started. */
function progress(text) {
  const s = Math.floor((performance.now() - BENCH_T0) / 1000);
  process.stderr.write(
    `[${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}] ${text}`,
  );
}

function die(msg) {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(2);
}

// ---------------------------------------------------------------------------
// Child processes: all spawned in their own process group, all killed on exit
// ---------------------------------------------------------------------------

/** @type {Set<import('node:child_process').ChildProcess>} */
const children = new Set();
/** Descendants seen (e.g. stdio upstreams a proxy spawned in their own group). */
const descendantPids = new Set();
let tmpDir;

let stopping = false;

function launch(name, command, args, { stdin = 'ignore' } = {}) {
  if (stopping) throw new Error('bench is stopping');
  const proc = spawn(command, args, {
    cwd: ROOT,
    stdio: [stdin, 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  proc.benchName = name;
  proc.stderrTail = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => {
    proc.stderrTail = (proc.stderrTail + d).slice(-4000);
  });
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  proc.on('error', (err) => {
    proc.stderrTail += `\nspawn error: ${err.message}`;
  });
  proc.stdin?.on('error', () => {}); // EPIPE once it is gone; its exit is what counts
  return proc;
}

function signalGroup(proc, signal) {
  try {
    process.kill(-proc.pid, signal);
  } catch {
    try {
      proc.kill(signal);
    } catch {}
  }
}

function isEchoServer(pid) {
  try {
    // An argument of its own (a `sh -c "node echo-server.js"` wrapper is not the server).
    return fs
      .readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .some((a) => a.endsWith('echo-server.js'));
  } catch {
    return false;
  }
}

/** SIGKILLs echo servers a proxy left behind (only those: a pid may have been reused). */
function killStrays(pids = descendantPids) {
  for (const pid of [...pids]) {
    try {
      if (isEchoServer(pid)) process.kill(pid, 'SIGKILL');
    } catch {}
    descendantPids.delete(pid);
  }
}

/** SIGTERM every child group, give them a moment, then SIGKILL what is left. */
async function stopAll(graceMs = 3000) {
  const procs = [...children];
  for (const p of procs) signalGroup(p, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (children.size > 0 && Date.now() < deadline) await sleep(50);
  for (const p of children) signalGroup(p, 'SIGKILL');
  await sleep(100);
  killStrays();
}

async function stopProc(proc, graceMs = 3000) {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  signalGroup(proc, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(proc, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

process.on('exit', () => {
  for (const p of children) signalGroup(p, 'SIGKILL');
  killStrays();
  if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    stopping = true;
    process.stderr.write(`\nbench: ${sig}, stopping children\n`);
    stopAll(1000).finally(() => process.exit(130));
  });
}

/** Resolves with the first `{"event":"listening","url":…}` line on the child's stdout (`adminUrl` too, for the gateway). */
function waitForListening(proc) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => fail(new Error('no "listening" line in time')), START_TIMEOUT_MS);
    const onData = (d) => {
      buf += d;
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const msg = JSON.parse(line);
          if (msg?.event === 'listening' && typeof msg.url === 'string') return done(msg);
        } catch {}
        nl = buf.indexOf('\n');
      }
    };
    const onExit = (code, signal) => fail(new Error(`exited (${code ?? signal}) before listening`));
    function cleanup() {
      clearTimeout(timer);
      proc.stdout.off('data', onData);
      proc.off('exit', onExit);
      proc.stdout.resume(); // keep draining whatever it prints later
    }
    function done(msg) {
      cleanup();
      resolve(msg);
    }
    function fail(err) {
      cleanup();
      reject(err);
    }
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', onData);
    proc.once('exit', onExit);
  });
}

/** Polls until something answers HTTP on the port (peers print no machine-readable line). */
async function waitForHttp(proc, port) {
  proc.stdout.resume();
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`exited (${proc.exitCode ?? proc.signalCode}) before listening`);
    }
    const ok = await new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/mcp', timeout: 500 }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => req.destroy());
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listening on port ${port} in time`);
}

async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

// ---------------------------------------------------------------------------
// /proc: CPU time and memory of a process
// ---------------------------------------------------------------------------

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime+stime in ms and the parent pid, or null when the process is gone. */
function procStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    const sysMs = (Number(f[12]) * 1000) / CLK_TCK;
    return { ppid: Number(f[1]), cpuMs: (Number(f[11]) * 1000) / CLK_TCK + sysMs, sysMs };
  } catch {
    return null;
  }
}

const cpuMs = (pids) => pids.reduce((sum, pid) => sum + (procStat(pid)?.cpuMs ?? 0), 0);

/** A `Vm*` line of /proc/PID/status in MB (VmHWM: peak RSS, VmRSS: current). */
function vmMB(pid, key) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** How many file descriptors a process has open, or null when it is gone. */
function openFds(pid) {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/** Every live descendant of `root` (a proxy's stdio upstreams, whatever group they run in). */
function descendants(root) {
  const kids = new Map();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = procStat(Number(name));
    if (!st) continue;
    const arr = kids.get(st.ppid);
    if (arr) arr.push(Number(name));
    else kids.set(st.ppid, [Number(name)]);
  }
  const out = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const k of kids.get(queue.shift()) ?? []) {
      out.push(k);
      queue.push(k);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Load generator: MCP over node:http keep-alive, or newline JSON over stdio
// ---------------------------------------------------------------------------

const CLIENT_DESCRIPTION =
  'bench/run.js built-in client: node:http keep-alive Agent, hand-written MCP ' +
  `${PROTOCOL_VERSION} (initialize + notifications/initialized + tools/list once per virtual caller, ` +
  'then tools/call echo in a loop; JSON or SSE responses parsed); stdio: newline JSON on the child pipes';

const INITIALIZE_PARAMS = {
  protocolVersion: PROTOCOL_VERSION,
  capabilities: {},
  clientInfo: { name: 'portcullis-bench', version: '1.0.0' },
};

/** Pulls the JSON-RPC response with `id` out of a JSON or SSE body. */
function parseRpcBody(contentType, body, id) {
  if (contentType.includes('text/event-stream')) {
    for (const event of body.split(/\r?\n\r?\n/)) {
      const data = event
        .split(/\r?\n/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n');
      if (!data) continue;
      const msg = JSON.parse(data);
      if (msg.id === id && ('result' in msg || 'error' in msg)) return msg;
    }
    throw new Error(`no response for id ${id} in SSE body`);
  }
  const msg = JSON.parse(body);
  if (msg.id !== id) throw new Error(`response id ${msg.id}, expected ${id}`);
  return msg;
}

function checkListed(msg, tool) {
  if (msg.error) throw new Error(`tools/list: rpc error ${msg.error.code}: ${msg.error.message}`);
  const names = (msg.result?.tools ?? []).map((t) => t.name);
  if (!names.includes(tool)) throw new Error(`tools/list: no ${tool} among ${JSON.stringify(names)}`);
}

function checkEcho(msg, text) {
  if (msg.error) throw new Error(`rpc error ${msg.error.code}: ${msg.error.message}`);
  const got = msg.result?.content?.[0]?.text;
  if (got !== text || msg.result.isError) throw new Error(`unexpected result ${JSON.stringify(msg.result)}`);
}

/** One virtual caller: its own MCP session over a shared keep-alive agent. */
class HttpMcpSession {
  constructor(url, agent, tool, extraHeaders = {}) {
    this.url = new URL(url);
    this.agent = agent;
    this.tool = tool;
    /** Sent on every request (the bearer token of the full-pipeline targets). */
    this.extraHeaders = extraHeaders;
    this.nextId = 0;
    this.sessionId = undefined;
    this.protocolVersion = PROTOCOL_VERSION;
  }

  post(message, timeoutMs = CALL_TIMEOUT_MS) {
    const body = JSON.stringify(message);
    const headers = {
      ...this.extraHeaders,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'content-length': Buffer.byteLength(body),
      'mcp-protocol-version': this.protocolVersion,
    };
    if (this.sessionId) headers['mcp-session-id'] = this.sessionId;
    return this.request('POST', headers, body, timeoutMs);
  }

  request(method, headers, body, timeoutMs = CALL_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: this.url.hostname,
          port: this.url.port,
          path: this.url.pathname,
          method,
          agent: this.agent,
          headers,
          timeout: timeoutMs,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d) => {
            text += d;
          });
          res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  async initialize() {
    const id = ++this.nextId;
    const res = await this.post(
      { jsonrpc: '2.0', id, method: 'initialize', params: INITIALIZE_PARAMS },
      INIT_TIMEOUT_MS,
    );
    if (res.status !== 200) throw new Error(`initialize: HTTP ${res.status}: ${res.text.slice(0, 200)}`);
    const msg = parseRpcBody(res.headers['content-type'] ?? '', res.text, id);
    if (msg.error) throw new Error(`initialize: ${msg.error.message}`);
    this.sessionId = res.headers['mcp-session-id'];
    if (!this.sessionId) throw new Error('initialize: no Mcp-Session-Id');
    this.protocolVersion = msg.result.protocolVersion ?? PROTOCOL_VERSION;
    const note = await this.post({ jsonrpc: '2.0', method: 'notifications/initialized' });
    if (note.status !== 202 && note.status !== 200)
      throw new Error(`notifications/initialized: HTTP ${note.status}`);
  }

  /** What a real client does before calling: fails unless the tool is listed. */
  async listTools() {
    const id = ++this.nextId;
    const res = await this.post({ jsonrpc: '2.0', id, method: 'tools/list', params: {} });
    if (res.status !== 200) throw new Error(`tools/list: HTTP ${res.status}: ${res.text.slice(0, 200)}`);
    checkListed(parseRpcBody(res.headers['content-type'] ?? '', res.text, id), this.tool);
  }

  async call(text) {
    const id = ++this.nextId;
    const res = await this.post({
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: { name: this.tool, arguments: { text } },
    });
    if (res.status !== 200) throw new Error(`tools/call: HTTP ${res.status}: ${res.text.slice(0, 200)}`);
    checkEcho(parseRpcBody(res.headers['content-type'] ?? '', res.text, id), text);
  }

  async close() {
    if (!this.sessionId) return;
    const headers = {
      ...this.extraHeaders,
      'mcp-session-id': this.sessionId,
      'mcp-protocol-version': this.protocolVersion,
    };
    await this.request('DELETE', headers).catch(() => {});
  }
}

/** One stdio connection shared by every caller: requests are pipelined by id. */
class StdioMcpClient {
  constructor(proc, tool) {
    this.proc = proc;
    this.tool = tool;
    this.nextId = 0;
    this.pending = new Map();
    let buf = '';
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (d) => {
      buf += d;
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim()) this.onLine(line);
        nl = buf.indexOf('\n');
      }
    });
    proc.on('exit', () => {
      for (const p of this.pending.values()) p.reject(new Error('stdio server exited'));
      this.pending.clear();
    });
  }

  onLine(line) {
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p || !('result' in msg || 'error' in msg)) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    p.resolve(msg);
  }

  request(method, params) {
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no answer in ${CALL_TIMEOUT_MS} ms`));
      }, CALL_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.proc.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
    });
  }

  async initialize() {
    const msg = await this.request('initialize', INITIALIZE_PARAMS);
    if (msg.error) throw new Error(`initialize: ${msg.error.message}`);
    this.proc.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
  }

  async listTools() {
    checkListed(await this.request('tools/list', {}), this.tool);
  }

  async call(text) {
    checkEcho(await this.request('tools/call', { name: this.tool, arguments: { text } }), text);
  }

  async close() {}
}

/** `n` callers for one measurement: how many calls each made, and every latency. */
async function drive(sessions, n, seconds) {
  const latencies = [];
  let errors = 0;
  let firstError;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  await Promise.all(
    sessions.slice(0, n).map(async (s, i) => {
      const text = `hello ${i}`;
      while (performance.now() < deadline) {
        const start = performance.now();
        try {
          await s.call(text);
          latencies.push(performance.now() - start);
        } catch (err) {
          errors++;
          firstError ??= String(err?.message ?? err);
          if (errors > 50 && latencies.length === 0) break;
          await sleep(5);
        }
      }
    }),
  );
  return { latencies, errors, firstError, elapsedMs: performance.now() - t0 };
}

// ---------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------

function findPeer(pkg) {
  // BENCH_PEER_DIR overrides the project's own devDependencies.
  const dirs = [...(SETTINGS.peerDir ? [path.resolve(SETTINGS.peerDir)] : []), ROOT];
  for (const dir of dirs) {
    const pj = path.join(dir, 'node_modules', pkg, 'package.json');
    if (!fs.existsSync(pj)) continue;
    const meta = JSON.parse(fs.readFileSync(pj, 'utf8'));
    const bin = typeof meta.bin === 'string' ? meta.bin : meta.bin?.[pkg];
    if (bin) return { version: meta.version, bin: path.join(path.dirname(pj), bin), from: dir };
  }
  return null;
}

/** The temp dir of this run (configs, key files, SQLite audit stores), created on first use. */
function runDir() {
  tmpDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-bench-'));
  return tmpDir;
}

/** Writes a gateway config (JSON is YAML) into the run's temp dir. */
function writeConfig(name, config) {
  const file = path.join(runDir(), `${name}.yaml`);
  fs.writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

let fixtures;
/** Keys, tokens, policy files and database names the gateway variants share, prepared once. */
async function gatewayFixtures() {
  fixtures ??= await prepareFixtures(path.join(runDir(), 'fixtures'));
  return fixtures;
}

async function startEchoHttp(name) {
  const proc = launch(name, NODE, [ECHO_SERVER, '--port', '0']);
  const { url } = await waitForListening(proc);
  return { proc, url };
}

const PORTCULLIS_VERSION = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;

const echoStdioUpstream = () => ({ transport: 'stdio', command: NODE, args: [ECHO_SERVER, '--stdio'] });

/**
 * A Portcullis target: `variant` (a function of bench/gateway-configs.js)
 * makes its config, in front of an HTTP echo server or a stdio one (spawned
 * by the gateway, one per client session).
 */
function portcullisTarget(what, variant, upstreamKind) {
  return {
    label: `Portcullis ${PORTCULLIS_VERSION}, ${what} -> ${upstreamKind} upstream`,
    version: PORTCULLIS_VERSION,
    async start(_peer, name) {
      const fx = await gatewayFixtures();
      const echo = upstreamKind === 'http' ? await startEchoHttp(`echo-http-behind-${name}`) : null;
      const upstream = echo ? { transport: 'http', url: echo.url } : echoStdioUpstream();
      // Picked before start: the token's audience is the gateway's URL.
      const port = await freePort();
      const { config, controls, clientHeaders } = variant({ name, upstream, port, fx });
      const file = writeConfig(name, config);
      const gw = launch(name, NODE, [...SETTINGS.gatewayNodeArgs, GATEWAY_BIN, 'serve', '--config', file]);
      const { url, adminUrl } = await waitForListening(gw);
      return {
        url,
        adminUrl,
        headers: clientHeaders,
        controls,
        tool: 'echo__echo',
        proxy: gw,
        main: gw,
        upstreamPids: echo ? () => [echo.proc.pid] : () => descendants(gw.pid),
      };
    },
  };
}

/**
 * Each target: how to start it, what the callers talk to, which process is
 * "the proxy" (its CPU and peak RSS are reported) and which are the servers
 * behind it (their CPU is reported as upstream CPU).
 */
const TARGETS = {
  'direct-http': {
    label: 'direct HTTP (client -> echo server)',
    async start() {
      const echo = await startEchoHttp('echo-http');
      return {
        url: echo.url,
        tool: 'echo',
        proxy: null,
        main: echo.proc,
        upstreamPids: () => [echo.proc.pid],
      };
    },
  },
  'direct-stdio': {
    label: 'direct stdio (bench spawns echo server)',
    async start() {
      const proc = launch('echo-stdio', NODE, [ECHO_SERVER, '--stdio'], { stdin: 'pipe' });
      return { stdio: proc, tool: 'echo', proxy: null, main: proc, upstreamPids: () => [proc.pid] };
    },
  },
  'node-hop': {
    label: 'bare node:http reverse proxy (no security work) -> echo server (HTTP)',
    async start() {
      const echo = await startEchoHttp('echo-http-behind-node-hop');
      const proc = launch('node-hop', NODE, [NODE_HOP, '--upstream', echo.url]);
      const { url } = await waitForListening(proc);
      return { url, tool: 'echo', proxy: proc, main: proc, upstreamPids: () => [echo.proc.pid] };
    },
  },
  'portcullis-full': portcullisTarget('full pipeline', fullPipelineConfig, 'http'),
  'portcullis-full-pg': portcullisTarget('full pipeline, PostgreSQL', fullPipelinePostgresConfig, 'http'),
  'portcullis-pass': portcullisTarget('pass-through', passThroughConfig, 'http'),
  'portcullis-full-stdio': portcullisTarget('full pipeline', fullPipelineConfig, 'stdio'),
  'portcullis-open': portcullisTarget('open gateway, permit-all', openGatewayConfig, 'http'),
  'mcp-proxy': {
    label: 'mcp-proxy -> stdio upstream',
    peer: 'mcp-proxy',
    async start(peer) {
      const port = await freePort();
      const proc = launch('mcp-proxy', NODE, [
        peer.bin,
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--server',
        'stream',
        '--',
        NODE,
        ECHO_SERVER,
        '--stdio',
      ]);
      await waitForHttp(proc, port);
      return {
        url: `http://127.0.0.1:${port}/mcp`,
        tool: 'echo',
        proxy: proc,
        main: proc,
        upstreamPids: () => descendants(proc.pid),
      };
    },
  },
  supergateway: {
    label: 'supergateway (stateful) -> stdio upstream',
    peer: 'supergateway',
    async start(peer) {
      const port = await freePort();
      const proc = launch('supergateway', NODE, [
        peer.bin,
        '--stdio',
        `${NODE} ${ECHO_SERVER} --stdio`,
        '--outputTransport',
        'streamableHttp',
        '--stateful',
        '--port',
        String(port),
        '--logLevel',
        'none',
      ]);
      await waitForHttp(proc, port);
      return {
        url: `http://127.0.0.1:${port}/mcp`,
        tool: 'echo',
        proxy: proc,
        main: proc,
        upstreamPids: () => descendants(proc.pid),
      };
    },
  },
};

/** Starts a target, opens `n` sessions (untimed) and warms everything up. */
async function openTarget(name, n) {
  const def = TARGETS[name];
  const entry = { name, label: def.label, status: 'ok', version: def.version ?? null, results: [] };
  let peer = null;
  if (def.peer) {
    peer = findPeer(def.peer);
    if (!peer) {
      entry.status = 'skipped';
      entry.reason = `not installed (npm install --save-dev ${def.peer}; or BENCH_PEER_DIR=DIR with DIR/node_modules/${def.peer})`;
      return { entry };
    }
    entry.version = peer.version;
    entry.label = `${def.peer} ${peer.version}${def.label.slice(def.peer.length)}`;
  }
  const before = new Set(children);
  let running;
  try {
    running = await def.start(peer, name);
    if (running.controls) entry.controls = running.controls;
    if (running.adminUrl) entry.pipeline = await pipelineStages(running.adminUrl);
    running.procs = [...children].filter((c) => !before.has(c));
    let sessions;
    const openSession = async (s) => {
      await s.initialize();
      await s.listTools();
      await s.call('warm');
    };
    // The first session alone and timed: it includes whatever the target does on first contact.
    const t0 = performance.now();
    if (running.stdio) {
      const client = new StdioMcpClient(running.stdio, running.tool);
      await openSession(client);
      entry.firstSessionMs = performance.now() - t0;
      sessions = Array.from({ length: n }, () => client);
    } else {
      running.agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
      sessions = Array.from(
        { length: n },
        () => new HttpMcpSession(running.url, running.agent, running.tool, running.headers),
      );
      await openSession(sessions[0]);
      entry.firstSessionMs = performance.now() - t0;
      // Then a few at a time: stdio-upstream proxies spawn one server per session.
      for (let i = 1; i < n; i += 4) await Promise.all(sessions.slice(i, i + 4).map(openSession));
    }
    // Generous: with 1 s, throughput at 1 caller kept climbing for the next ~4 s (JIT tiering).
    for (const c of SETTINGS.concurrency) await drive(sessions, c, SETTINGS.warmupSeconds);
    running.strays = running.upstreamPids();
    for (const pid of running.strays) descendantPids.add(pid);
    return { entry, running, sessions };
  } catch (err) {
    entry.status = 'failed';
    entry.reason = String(err?.message ?? err);
    const mine = [...children].filter((c) => !before.has(c));
    const tail = mine.map((c) => `[${c.benchName}] ${c.stderrTail.trim()}`).join('\n');
    entry.stderrTail = tail.trim().split('\n').slice(-8).join('\n');
    const strays = mine.flatMap((c) => descendants(c.pid));
    for (const pid of strays) descendantPids.add(pid);
    await Promise.all(mine.map((c) => stopProc(c, 1000)));
    killStrays(strays);
    return { entry };
  }
}

async function closeTarget(t) {
  if (!t.running) return;
  await Promise.all(t.sessions.map((s) => s.close()));
  t.running.agent?.destroy();
  // The proxy first, so it can end its own upstreams; then whatever else the target started.
  if (t.running.proxy) await stopProc(t.running.proxy);
  await Promise.all(t.running.procs.map((c) => stopProc(c)));
  await sleep(100);
  killStrays(t.running.strays ?? []);
}

/** One measured round: c callers for `seconds`, CPU read from /proc before and after. */
async function measureRound(t, c) {
  // Scraped outside the CPU window, so the scrape's own cost is not charged to the calls.
  const stages0 = t.running.adminUrl ? await scrapeStages(t.running.adminUrl).catch(() => null) : null;
  const proxyPid = t.running.proxy?.pid;
  const upstream = t.running.upstreamPids();
  const cpu0 = {
    proxy: proxyPid ? cpuMs([proxyPid]) : 0,
    proxySys: proxyPid ? (procStat(proxyPid)?.sysMs ?? 0) : 0,
    upstream: cpuMs(upstream),
    client: process.cpuUsage(),
  };
  const r = await drive(t.sessions, c, SETTINGS.seconds);
  const client = process.cpuUsage(cpu0.client);
  const cpu = {
    proxyCpuMs: proxyPid ? cpuMs([proxyPid]) - cpu0.proxy : null,
    proxySysCpuMs: proxyPid ? (procStat(proxyPid)?.sysMs ?? 0) - cpu0.proxySys : null,
    upstreamCpuMs: cpuMs(upstream) - cpu0.upstream,
    clientCpuMs: (client.user + client.system) / 1000,
  };
  const stages1 = stages0 ? await scrapeStages(t.running.adminUrl).catch(() => null) : null;
  const stages = stages0 && stages1 ? stageDelta(stages0, stages1) : null;
  return { ...r, ...cpu, stages };
}

/** GETs a URL on loopback and resolves with the body (status 200 only). */
function httpGetText(url, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        text += d;
      });
      res.on('end', () =>
        res.statusCode === 200 ? resolve(text) : reject(new Error(`GET ${url}: HTTP ${res.statusCode}`)),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** Stage name -> { sumS, count } from the gateway's Prometheus text (`portcullis_stage_duration_seconds`). */
function parseStageMetrics(text) {
  const out = {};
  const re = /^portcullis_stage_duration_seconds_(sum|count)\{stage="([^"]+)"\} (\S+)$/gm;
  for (const [, kind, stage, value] of text.matchAll(re)) {
    out[stage] ??= { sumS: 0, count: 0 };
    out[stage][kind === 'sum' ? 'sumS' : 'count'] = Number(value);
  }
  return out;
}

/** The gateway's stage names in pipeline order (admin `/status`), for the stage table. */
async function pipelineStages(adminUrl) {
  try {
    const status = JSON.parse(await httpGetText(`${adminUrl}/status`));
    return Array.isArray(status.stages) ? status.stages : [];
  } catch {
    return [];
  }
}

async function scrapeStages(adminUrl) {
  return parseStageMetrics(await httpGetText(`${adminUrl}/metrics`));
}

/** What each stage recorded between two scrapes: total seconds and how many times it ran. */
function stageDelta(before, after) {
  const out = {};
  for (const [stage, a] of Object.entries(after)) {
    const b = before[stage] ?? { sumS: 0, count: 0 };
    out[stage] = { sumS: a.sumS - b.sumS, count: a.count - b.count };
  }
  return out;
}

// ---------------------------------------------------------------------------
// Statistics and output
// ---------------------------------------------------------------------------

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function summarize(c, rounds) {
  const lat = Float64Array.from(rounds.flatMap((r) => r.latencies)).sort();
  const calls = lat.length;
  const elapsedMs = rounds.reduce((s, r) => s + r.elapsedMs, 0);
  const perCall = (ms) => (calls > 0 && ms !== null ? (ms * 1000) / calls : null);
  const sum = (k) => (rounds.some((r) => r[k] === null) ? null : rounds.reduce((s, r) => s + r[k], 0));
  const perRound = rounds.map((r) => (r.latencies.length * 1000) / r.elapsedMs);
  const mean = perRound.reduce((a, b) => a + b, 0) / perRound.length;
  return {
    concurrency: c,
    rounds: rounds.length,
    calls,
    errors: rounds.reduce((s, r) => s + r.errors, 0),
    firstError: rounds.find((r) => r.firstError)?.firstError ?? null,
    elapsedS: elapsedMs / 1000,
    callsPerSec: (calls * 1000) / elapsedMs,
    perRoundCallsPerSec: perRound,
    spreadPct: mean > 0 ? ((Math.max(...perRound) - Math.min(...perRound)) / mean) * 100 : null,
    p50Ms: percentile(lat, 50),
    p99Ms: percentile(lat, 99),
    meanMs: calls > 0 ? lat.reduce((a, b) => a + b, 0) / calls : null,
    maxMs: calls > 0 ? lat[calls - 1] : null,
    proxyCpuUsPerCall: perCall(sum('proxyCpuMs')),
    /** Of which in the kernel (stime): syscalls, the audit's fsyncs, socket I/O. */
    proxySysCpuUsPerCall: perCall(sum('proxySysCpuMs')),
    upstreamCpuUsPerCall: perCall(sum('upstreamCpuMs')),
    clientCpuUsPerCall: perCall(sum('clientCpuMs')),
    stages: summarizeStages(rounds),
  };
}

/**
 * Per stage: wall time per call in µs (the gateway's own stage timings, summed
 * over every call of every round, divided by the calls made, errors included)
 * and how many times it ran. Null for targets without an admin listener.
 */
function summarizeStages(rounds) {
  if (rounds.some((r) => !r.stages)) return null;
  const calls = rounds.reduce((s, r) => s + r.latencies.length + r.errors, 0);
  const out = {};
  for (const r of rounds) {
    for (const [stage, d] of Object.entries(r.stages)) {
      out[stage] ??= { sumS: 0, count: 0 };
      out[stage].sumS += d.sumS;
      out[stage].count += d.count;
    }
  }
  return Object.fromEntries(
    Object.entries(out).map(([stage, d]) => [
      stage,
      { usPerCall: calls > 0 ? (d.sumS * 1e6) / calls : null, count: d.count },
    ]),
  );
}

/** The CPU per call that stands for a target: the proxy's, or the server's when there is none. */
const ownCpu = (entry, r) =>
  entry.name.startsWith('direct-') ? r.upstreamCpuUsPerCall : r.proxyCpuUsPerCall;

function addRatios(entries) {
  const base = entries.find((e) => e.name === 'direct-http' && e.status === 'ok');
  for (const e of entries) {
    for (const r of e.results) {
      const b = base?.results.find((x) => x.concurrency === r.concurrency);
      const div = (a, d) => (a !== null && d ? a / d : null);
      r.vsDirectHttp = b
        ? {
            p50: div(r.p50Ms, b.p50Ms),
            p99: div(r.p99Ms, b.p99Ms),
            callsPerSec: div(r.callsPerSec, b.callsPerSec),
            cpuPerCall: div(ownCpu(e, r), b.upstreamCpuUsPerCall),
          }
        : null;
    }
  }
}

const fmt = (v, digits = 2) => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(digits));
const fmtInt = (v) => (v === null || v === undefined ? 'n/a' : Math.round(v).toLocaleString('en-US'));
const fmtX = (v) => (v === null || v === undefined ? 'n/a' : `${v.toFixed(2)}x`);

function table(headers, rows, align) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) =>
    cells
      .map((cell, i) =>
        align[i] === 'l' ? String(cell).padEnd(widths[i]) : String(cell).padStart(widths[i]),
      )
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function printResults(report) {
  const rows = [];
  for (const e of report.targets) {
    if (e.status !== 'ok') {
      rows.push([e.name, '-', e.status, '', '', '', '', '', '', '', '', '', '', '']);
      continue;
    }
    for (const r of e.results) {
      const x = r.vsDirectHttp;
      rows.push([
        e.name,
        r.concurrency,
        fmtInt(r.callsPerSec),
        fmt(r.spreadPct, 0),
        fmt(r.p50Ms, 3),
        fmt(r.p99Ms, 3),
        fmtInt(r.proxyCpuUsPerCall),
        fmtInt(r.upstreamCpuUsPerCall),
        fmtInt(r.clientCpuUsPerCall),
        r.errors,
        fmtX(x?.callsPerSec),
        fmtX(x?.p50),
        fmtX(x?.p99),
        fmtX(x?.cpuPerCall),
      ]);
    }
  }
  const headers = [
    'target',
    'c',
    'calls/s',
    '±%',
    'p50 ms',
    'p99 ms',
    'proxy µs/call',
    'server µs/call',
    'client µs/call',
    'err',
    'x calls/s',
    'x p50',
    'x p99',
    'x CPU',
  ];
  console.log(table(headers, rows, ['l']));
  console.log(
    '\nc = concurrent callers; ±% = spread of per-round calls/s (max-min)/mean; CPU = utime+stime from /proc per call;' +
      '\nproxy = the gateway/peer process; server = the echo server(s) behind it (for stdio peers: every descendant);' +
      '\nclient = this load generator. x = ratio to direct-http at the same c; x CPU compares the proxy CPU per call' +
      '\n(the server CPU for direct targets) with the direct-http server CPU per call.',
  );
  const memRows = report.targets.map((e) =>
    e.status === 'ok'
      ? [
          e.name,
          e.label,
          fmtInt(e.firstSessionMs),
          fmt(e.peakRssMB, 1),
          e.upstreamProcs,
          fmt(e.upstreamRssMB, 1),
        ]
      : [e.name, e.label, e.status, '', '', ''],
  );
  const memHeaders = ['target', 'what', 'first call ms', 'peak RSS MB', 'server procs', 'server RSS MB'];
  console.log(`\n${table(memHeaders, memRows, ['l', 'l', 'r', 'r', 'r', 'r'])}`);
  console.log(
    '\nfirst call ms = from the first initialize to the first tools/call answer, target already listening;' +
      '\npeak RSS = VmHWM of the proxy process (of the echo server for direct targets) at the end of the run;' +
      '\nserver procs / RSS = the echo server processes behind the target then (VmRSS sum).',
  );
  const withControls = report.targets.filter((e) => e.controls);
  if (withControls.length > 0) {
    console.log('\ncontrols on (bench/gateway-configs.js):');
    for (const e of withControls) console.log(`  ${e.name}: ${e.controls.join(', ') || 'none'}`);
  }
  printStages(report);
  printVerdict(report);
  for (const e of report.targets) {
    if (e.status !== 'ok') console.log(`note: ${e.name} ${e.status}: ${e.reason}`);
    for (const r of e.results ?? []) {
      if (r.firstError)
        console.log(`note: ${e.name} c=${r.concurrency}: ${r.errors} errors, first: ${r.firstError}`);
    }
    if (e.stderrTail) console.log(`note: ${e.name} stderr:\n${e.stderrTail}`);
  }
}

/**
 * The issue's targets, as ratios measured in this run. Each check: the
 * measured figure(s), the limit, and whether every figure is within it.
 */
function verdict(entries) {
  const ok = (name) => entries.find((e) => e.name === name && e.status === 'ok');
  const at = (e, c) => e?.results.find((r) => r.concurrency === c);
  const checks = [];
  const add = (check, values, limit, cmp, bareHop = null) => {
    const known = values.filter((v) => v.value !== null && v.value !== undefined);
    const pass =
      known.length === 0
        ? null
        : known.every((v) =>
            cmp === '<=' ? v.value <= limit : cmp === '>=' ? v.value >= limit : v.value < limit,
          );
    checks.push({ check, values, limit, cmp, pass, bareHop });
  };
  const full = ok('portcullis-full');
  const direct = ok('direct-http');
  // The same ratio for a bare node:http hop that does no security work: the floor under the target.
  const hop1 = at(ok('node-hop'), 1)?.vsDirectHttp;
  const hop8 = at(ok('node-hop'), 8)?.vsDirectHttp;
  for (const gwName of ['portcullis-full', 'portcullis-full-pg']) {
    const gw = ok(gwName);
    if (!gw || !direct) continue;
    const r1 = at(gw, 1)?.vsDirectHttp;
    const r8 = at(gw, 8)?.vsDirectHttp;
    if (r1) {
      add(`${gwName} p50 / direct-http, 1 caller`, [{ c: 1, value: r1.p50 }], 2.2, '<=', hop1?.p50);
      add(`${gwName} p99 / direct-http, 1 caller`, [{ c: 1, value: r1.p99 }], 3, '<=', hop1?.p99);
      add(
        `${gwName} gateway CPU/call / direct server CPU/call, 1 caller`,
        [{ c: 1, value: r1.cpuPerCall }],
        2,
        '<=',
        hop1?.cpuPerCall,
      );
    }
    if (r8)
      add(
        `${gwName} calls/s / direct-http, 8 callers`,
        [{ c: 8, value: r8.callsPerSec }],
        0.5,
        '>=',
        hop8?.callsPerSec,
      );
  }
  for (const gwName of ['portcullis-full', 'portcullis-full-stdio']) {
    const gw = ok(gwName);
    if (!gw) continue;
    for (const peerName of ['mcp-proxy', 'supergateway']) {
      const peer = ok(peerName);
      if (!peer) continue;
      const pairs = gw.results.map((r) => [r, at(peer, r.concurrency)]).filter(([, p]) => p);
      const div = (a, b) => (a !== null && b ? a / b : null);
      add(
        `${gwName} p50 / ${peerName} p50`,
        pairs.map(([r, p]) => ({ c: r.concurrency, value: div(r.p50Ms, p.p50Ms) })),
        1,
        '<',
      );
      add(
        `${gwName} CPU/call / ${peerName} CPU/call`,
        pairs.map(([r, p]) => ({ c: r.concurrency, value: div(r.proxyCpuUsPerCall, p.proxyCpuUsPerCall) })),
        1,
        '<',
      );
    }
  }
  return { fullPipelineControls: full?.controls ?? null, checks };
}

function printVerdict(report) {
  const v = report.verdict;
  if (!v || v.checks.length === 0) return;
  const rows = v.checks.map((k) => [
    k.check,
    k.values.map((x) => (k.values.length > 1 ? `c=${x.c}: ${fmtX(x.value)}` : fmtX(x.value))).join(', '),
    `${k.cmp} ${k.limit.toFixed(2)}x`,
    k.pass === null ? 'n/a' : k.pass ? 'met' : 'MISSED',
    k.bareHop === null || k.bareHop === undefined ? '' : fmtX(k.bareHop),
  ]);
  const headers = ['check', 'measured', 'target', 'result', 'bare hop'];
  console.log(
    `\ntargets of issue 3 (ratios in this run)\n${table(headers, rows, ['l', 'l', 'l', 'l', 'r'])}`,
  );
  console.log(
    'bare hop = the same ratio for node-hop, a node:http reverse proxy doing no security work (bench/node-hop.js):' +
      '\nwhat one extra Node process in the path costs on this machine before any control runs.',
  );
  console.log(
    `portcullis-full runs with: ${v.fullPipelineControls?.join(', ') || 'no controls (none has landed in the config schema yet)'}.` +
      '\nCPU/call: the gateway process vs the peer process; stdio peers also run an echo server per session' +
      '\n(see server µs/call). Memory over a 10-minute soak is not part of this run: npm run bench -- --soak.',
  );
}

/** Per-stage µs per call of the Portcullis targets, columns in pipeline order. */
function printStages(report) {
  const gws = report.targets.filter((e) => e.status === 'ok' && e.results.some((r) => r.stages));
  if (gws.length === 0) return;
  const names = [];
  for (const e of gws) {
    for (const n of e.pipeline ?? []) if (!names.includes(n)) names.push(n);
  }
  for (const e of gws) {
    for (const r of e.results)
      for (const n of Object.keys(r.stages ?? {})) if (!names.includes(n)) names.push(n);
  }
  const rows = [];
  for (const e of gws) {
    for (const r of e.results) {
      const us = names.map((n) => r.stages?.[n]?.usPerCall ?? null);
      const total = us.reduce((a, v) => a + (v ?? 0), 0);
      rows.push([
        e.name,
        r.concurrency,
        ...us.map(fmtInt),
        fmtInt(total),
        fmtInt(r.proxyCpuUsPerCall),
        fmtInt(r.proxySysCpuUsPerCall),
      ]);
    }
  }
  console.log(
    `\nstage timings, µs per call (wall time inside the gateway, from its /metrics; scraped before and after each round)\n` +
      table(['target', 'c', ...names, 'sum', 'proxy CPU µs', 'of which sys'], rows, ['l']),
  );
  console.log(
    "a stage's time includes its awaits: `forward` holds the upstream round trip, and at c > 1 every stage" +
      '\nalso waits for the event loop behind other calls. proxy CPU µs is the process CPU per call, for scale;' +
      '\nof which sys = kernel time (stime): socket I/O, SQLite writes and fsyncs.',
  );
}

function machine() {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    memGB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadavgAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

function printHeader(m, what) {
  console.log(`Portcullis bench: ${what}`);
  console.log(`machine: ${m.cpuModel}, ${m.cores} cores, ${m.memGB} GB, ${m.platform}`);
  console.log(`node: ${m.node}; load average at start: ${m.loadavgAtStart.join(' ')}`);
  console.log(`client: ${CLIENT_DESCRIPTION}`);
}

function writeJson(file, data) {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const out = path.join(RESULTS_DIR, file);
  fs.writeFileSync(out, `${JSON.stringify(data, null, 2)}\n`);
  return path.relative(ROOT, out);
}

// ---------------------------------------------------------------------------
// Micro-benchmarks other areas add as bench/*-bench.js
// ---------------------------------------------------------------------------

/** The ones the issue asks for; any other bench/*-bench.js runs too. */
const EXPECTED_MICRO = [
  { what: 'policy decisions/s (issue 5)', files: ['policy-bench.js'] },
  { what: 'audit appends/s (issue 6)', files: ['audit-bench.js'] },
  { what: 'JWT verifications/s (issue 4)', files: ['jwt-bench.js', 'identity-bench.js'] },
  { what: 'masking MB/s', files: ['masking-bench.js', 'protect-bench.js'] },
];

/** Runs every bench/*-bench.js in turn, alone on the machine; collects what each prints. */
async function runMicroBenches() {
  const files = fs
    .readdirSync(path.join(ROOT, 'bench'))
    .filter((f) => f.endsWith('-bench.js'))
    .sort();
  const out = [];
  for (const file of files) out.push(await runMicroBench(file));
  for (const exp of EXPECTED_MICRO) {
    if (!exp.files.some((f) => files.includes(f))) {
      out.push({ file: exp.files.join(' | '), status: 'absent', note: `${exp.what}: not added yet` });
    }
  }
  return out;
}

async function runMicroBench(file) {
  progress(`micro-benchmark bench/${file}\n`);
  const t0 = performance.now();
  const proc = launch(file, NODE, [path.join(ROOT, 'bench', file)]);
  let stdout = '';
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (d) => {
    stdout += d;
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    signalGroup(proc, 'SIGKILL');
  }, SETTINGS.microTimeoutSeconds * 1000);
  const [code, signal] = await once(proc, 'exit');
  clearTimeout(timer);
  const status = timedOut ? 'timeout' : code === 0 ? 'ok' : `failed (${code ?? signal})`;
  const result = {
    file,
    status,
    seconds: Math.round(performance.now() - t0) / 1000,
    output: stdout.trimEnd(),
  };
  const json = stdout
    .split('\n')
    .filter((l) => l.trimStart().startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l)];
      } catch {
        return [];
      }
    });
  if (json.length > 0) result.json = json;
  if (status !== 'ok') result.stderrTail = proc.stderrTail.trim().split('\n').slice(-8).join('\n');
  return result;
}

function printMicro(micro) {
  if (!SETTINGS.micro) {
    console.log('\nmicro-benchmarks: skipped (BENCH_MICRO=off)');
    return;
  }
  console.log('\nmicro-benchmarks (bench/*-bench.js, each run alone after the A/B run)');
  for (const m of micro) {
    if (m.status === 'absent') {
      console.log(`- ${m.file}: absent (${m.note})`);
      continue;
    }
    console.log(`- bench/${m.file}: ${m.status}, ${fmt(m.seconds, 1)} s`);
    if (m.output) console.log(m.output.replace(/^/gm, '    '));
    if (m.stderrTail) console.log(`    stderr: ${m.stderrTail.replace(/\n/g, '\n    ')}`);
  }
}

// ---------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------

async function abRun() {
  const m = machine();
  const maxC = Math.max(...SETTINGS.concurrency);
  const measurements = SETTINGS.targets.length * SETTINGS.concurrency.length * SETTINGS.rounds;
  const warmups = SETTINGS.targets.length * SETTINGS.concurrency.length;
  printHeader(
    m,
    `interleaved A/B, ${SETTINGS.rounds} rounds x ${SETTINGS.concurrency.join('/')} callers x ` +
      `${SETTINGS.targets.length} targets x ${SETTINGS.seconds} s ` +
      `(~${Math.ceil((measurements * SETTINGS.seconds + warmups * SETTINGS.warmupSeconds) / 60)} min of load)`,
  );
  const startedAt = new Date();
  const open = [];
  for (const name of SETTINGS.targets) {
    progress(`starting ${name} (${maxC} sessions, ${SETTINGS.warmupSeconds} s warm-up per concurrency)\n`);
    open.push(await openTarget(name, maxC));
  }
  const live = open.filter((t) => t.running);
  const samples = new Map(live.map((t) => [t.entry.name, new Map(SETTINGS.concurrency.map((c) => [c, []]))]));
  for (let round = 0; round < SETTINGS.rounds; round++) {
    for (const [ci, c] of SETTINGS.concurrency.entries()) {
      // Round-robin, with the order rotated so no target always goes first.
      const k = (round + ci) % Math.max(1, live.length);
      for (const t of [...live.slice(k), ...live.slice(0, k)]) {
        const r = await measureRound(t, c);
        samples.get(t.entry.name).get(c).push(r);
        progress(
          `round ${round + 1}/${SETTINGS.rounds} c=${c} ${t.entry.name}: ` +
            `${Math.round((r.latencies.length * 1000) / r.elapsedMs)} calls/s${r.errors ? `, ${r.errors} errors` : ''}\n`,
        );
        const dead = t.running.procs.find((p) => p.exitCode !== null || p.signalCode !== null);
        if (dead) {
          // A crash is a finding, not a reason to lose the other targets' figures.
          t.entry.status = 'died';
          t.entry.reason = `${dead.benchName} exited (${dead.exitCode ?? dead.signalCode}) during round ${round + 1}, c=${c}; first error: ${r.firstError ?? 'none'}`;
          t.entry.stderrTail = dead.stderrTail.trim().split('\n').slice(-12).join('\n');
          progress(`${t.entry.reason}\n`);
          live.splice(live.indexOf(t), 1);
          await closeTarget(t);
        }
      }
    }
  }
  for (const t of live) {
    t.entry.results = SETTINGS.concurrency.map((c) => summarize(c, samples.get(t.entry.name).get(c)));
    const upstream = t.running.upstreamPids().filter(isEchoServer);
    t.entry.peakRssMB = vmMB(t.running.main.pid, 'VmHWM');
    t.entry.upstreamProcs = upstream.length;
    t.entry.upstreamRssMB = upstream.reduce((s, pid) => s + (vmMB(pid, 'VmRSS') ?? 0), 0);
    t.entry.sessions = t.running.stdio ? 1 : maxC;
  }
  for (const t of live) await closeTarget(t);
  const entries = open.map((t) => t.entry);
  addRatios(entries);
  const micro = SETTINGS.micro ? await runMicroBenches() : [];
  const report = {
    kind: 'ab',
    startedAt: startedAt.toISOString(),
    durationS: Math.round((Date.now() - startedAt.getTime()) / 100) / 10,
    machine: m,
    settings: {
      ...SETTINGS,
      soakSeconds: undefined,
      soakConcurrency: undefined,
      soakSampleSeconds: undefined,
    },
    client: CLIENT_DESCRIPTION,
    targets: entries,
    verdict: verdict(entries),
    micro,
  };
  console.log('');
  printResults(report);
  printMicro(micro);
  console.log(`\nwrote ${writeJson('latest.json', report)} (${report.durationS} s)`);
}

/** `--micro`: only the micro-benchmarks. */
async function microRun() {
  printHeader(machine(), 'micro-benchmarks only (bench/*-bench.js)');
  const micro = await runMicroBenches();
  printMicro(micro);
  console.log(`\nwrote ${writeJson('micro-latest.json', { kind: 'micro', machine: machine(), micro })}`);
}

/** `--check-configs`: writes every gateway variant's config and validates it with `portcullis config check`. */
async function checkConfigsRun() {
  const fx = await gatewayFixtures();
  const variants = {
    full: fullPipelineConfig,
    'full-pg': fullPipelinePostgresConfig,
    pass: passThroughConfig,
    open: openGatewayConfig,
  };
  const upstreams = {
    http: { transport: 'http', url: 'http://127.0.0.1:9/mcp' },
    stdio: echoStdioUpstream(),
  };
  let bad = 0;
  for (const [vname, variant] of Object.entries(variants)) {
    for (const [uname, upstream] of Object.entries(upstreams)) {
      const name = `check-${vname}-${uname}`;
      const { config, controls } = variant({ name, upstream, port: 8080, fx });
      const file = writeConfig(name, config);
      let verdictText;
      try {
        verdictText = execFileSync(NODE, [GATEWAY_BIN, 'config', 'check', file], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, NODE_OPTIONS: '' },
        }).trim();
      } catch (err) {
        bad++;
        verdictText = `INVALID (exit ${err.status}): ${String(err.stderr ?? err.message).trim()}`;
      }
      console.log(
        `${vname} / ${uname} upstream, controls: ${controls.join(', ') || 'none'}\n  ${verdictText}`,
      );
      if (process.env.BENCH_SHOW_CONFIGS) console.log(JSON.stringify(config, null, 2));
    }
  }
  if (bad > 0) process.exitCode = 1;
}

async function soakRun() {
  const m = machine();
  const c = SETTINGS.soakConcurrency;
  printHeader(
    m,
    `memory soak, ${SETTINGS.soakSeconds} s at ${c} callers per target (${SETTINGS.soakTargets.join(', ')})`,
  );
  const startedAt = new Date();
  const results = [];
  for (const name of SETTINGS.soakTargets) {
    if (!TARGETS[name]) die(`unknown target ${name}`);
    progress(`starting ${name}\n`);
    const t = await openTarget(name, c);
    if (!t.running) {
      results.push(t.entry);
      continue;
    }
    const pid = t.running.main.pid;
    const samplesMB = [];
    const rounds = [];
    const slices = Math.max(2, Math.round(SETTINGS.soakSeconds / SETTINGS.soakSampleSeconds));
    for (let i = 0; i < slices; i++) {
      rounds.push(await drive(t.sessions, c, SETTINGS.soakSampleSeconds));
      const rss = vmMB(pid, 'VmRSS');
      samplesMB.push({
        atS: Math.round((i + 1) * SETTINGS.soakSampleSeconds),
        rssMB: rss,
        fds: openFds(pid),
      });
      progress(`soak ${name}: ${(i + 1) * SETTINGS.soakSampleSeconds} s, RSS ${fmt(rss, 1)} MB\n`);
    }
    // The baseline is the sample at a tenth of the soak: the heap sizes itself in the first tens of seconds.
    const first = samplesMB[0].rssMB;
    const base = samplesMB[Math.floor(samplesMB.length / 10)].rssMB;
    const last = samplesMB[samplesMB.length - 1].rssMB;
    const calls = rounds.reduce((s, r) => s + r.latencies.length, 0);
    const lat = Float64Array.from(rounds.flatMap((r) => r.latencies)).sort();
    t.entry.soak = {
      seconds: SETTINGS.soakSeconds,
      concurrency: c,
      calls,
      errors: rounds.reduce((s, r) => s + r.errors, 0),
      callsPerSec: (calls * 1000) / rounds.reduce((s, r) => s + r.elapsedMs, 0),
      p50Ms: percentile(lat, 50),
      p99Ms: percentile(lat, 99),
      rssFirstSampleMB: first,
      // Open descriptors (sockets, files): a listener or connection leak shows as a climb.
      fdsFirst: samplesMB[0].fds,
      fdsLast: samplesMB[samplesMB.length - 1].fds,
      fdsMax: Math.max(...samplesMB.map((x) => x.fds ?? 0)),
      rssBaselineMB: base,
      rssBaselineAtS: samplesMB[Math.floor(samplesMB.length / 10)].atS,
      rssLastMB: last,
      rssGrowthPct: base && last ? ((last - base) / base) * 100 : null,
      peakRssMB: vmMB(pid, 'VmHWM'),
      samples: samplesMB,
    };
    results.push(t.entry);
    await closeTarget(t);
  }
  const rows = results.map((e) =>
    e.soak
      ? [
          e.name,
          fmtInt(e.soak.calls),
          e.soak.errors,
          fmtInt(e.soak.callsPerSec),
          fmt(e.soak.p50Ms, 3),
          fmt(e.soak.p99Ms, 3),
          fmt(e.soak.rssFirstSampleMB, 1),
          fmt(e.soak.rssBaselineMB, 1),
          fmt(e.soak.rssLastMB, 1),
          fmt(e.soak.peakRssMB, 1),
          `${fmt(e.soak.rssGrowthPct, 1)}%`,
          `${e.soak.fdsFirst ?? 'n/a'} -> ${e.soak.fdsLast ?? 'n/a'} (max ${e.soak.fdsMax})`,
        ]
      : [e.name, `${e.status}: ${e.reason}`, '', '', '', '', '', '', '', '', '', ''],
  );
  console.log('');
  console.log(
    table(
      [
        'target',
        'calls',
        'err',
        'calls/s',
        'p50 ms',
        'p99 ms',
        'RSS first MB',
        'baseline MB',
        'RSS last MB',
        'peak MB',
        'growth',
        'open fds',
      ],
      rows,
      ['l'],
    ),
  );
  console.log(
    `\nRSS = VmRSS of the proxy process (of the server for direct targets), sampled every ${SETTINGS.soakSampleSeconds} s;` +
      '\nbaseline = the sample at a tenth of the soak (the heap sizes itself first); growth = last vs baseline;' +
      '\nopen fds = descriptors of the proxy process, first and last sample: a connection or listener leak climbs.',
  );
  const report = {
    kind: 'soak',
    startedAt: startedAt.toISOString(),
    durationS: Math.round((Date.now() - startedAt.getTime()) / 100) / 10,
    machine: m,
    settings: SETTINGS,
    client: CLIENT_DESCRIPTION,
    targets: results,
  };
  console.log(`\nwrote ${writeJson('soak-latest.json', report)}`);
}

// ---------------------------------------------------------------------------

if (flags.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
{
  const [major, minor] = process.versions.node.split('.').map(Number);
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

try {
  if (flags['check-configs']) await checkConfigsRun();
  else if (flags.micro) await microRun();
  else if (flags.soak) await soakRun();
  else await abRun();
} catch (err) {
  process.stderr.write(`bench: ${err?.stack ?? err}\n`);
  process.exitCode = 1;
} finally {
  await stopAll();
  if (fixtures)
    await cleanupFixtures(fixtures).catch((err) => process.stderr.write(`bench: cleanup: ${err}\n`));
}
