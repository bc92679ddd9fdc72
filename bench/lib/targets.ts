/** The targets: how each starts, what the callers talk to, and which processes count as proxy and server. */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  checkpointsByCount,
  type Fixtures,
  fullPipelineConfig,
  fullPipelineOverlapConfig,
  fullPipelinePostgresConfig,
  openGatewayConfig,
  passThroughConfig,
  prepareFixtures,
  type Variant,
  type VariantInput,
} from '../gateway-configs.ts';
import { type Caller, drive, HttpMcpSession, StdioMcpClient } from './load.ts';
import { descendants } from './measure.ts';
import {
  children,
  descendantPids,
  freePort,
  killStrays,
  type Launch,
  launch,
  runDir,
  stopProc,
  waitForHttp,
  waitForListening,
} from './processes.ts';
import { ECHO_SERVER, flags, GATEWAY_BIN, NODE, NODE_HOP, ROOT, SETTINGS } from './settings.ts';
import { pipelineStages } from './stages.ts';
import type { LiveTarget, OpenTarget, Peer, Running, TargetDef, TargetEntry } from './types.ts';

function findPeer(pkg: string): Peer | null {
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

/** Writes a gateway config (JSON is YAML) into the run's temp dir. */
export function writeConfig(name: string, config: unknown): string {
  const file = path.join(runDir(), `${name}.yaml`);
  fs.writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

let fixtures: Fixtures | undefined;
/** Keys, tokens, policy files and database names the gateway variants share, prepared once. */
export async function gatewayFixtures() {
  fixtures ??= await prepareFixtures(path.join(runDir(), 'fixtures'));
  return fixtures;
}

async function startEchoHttp(name: string, start: Launch = launch) {
  const proc = start(name, NODE, [ECHO_SERVER, '--port', '0']);
  const { url } = await waitForListening(proc);
  return { proc, url };
}

const PORTCULLIS_VERSION: string = JSON.parse(
  fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'),
).version;

/** `sandbox: off` unless asked: the plain stdio target stays the unsandboxed baseline. */
export const echoStdioUpstream = (sandbox: unknown = 'off') => ({
  transport: 'stdio',
  command: NODE,
  args: [ECHO_SERVER, '--stdio'],
  sandbox,
});

/** A function of bench/gateway-configs.ts: the config of one gateway variant. */
type GatewayVariant = (input: VariantInput) => Variant;

/**
 * A Portcullis target: `variant` makes its config, in front of an HTTP echo
 * server or a stdio one (spawned by the gateway, one per client session).
 */

function portcullisTarget(
  what: string,
  variant: GatewayVariant,
  upstreamKind: 'http' | 'stdio' | 'sandboxed stdio',
): TargetDef {
  return {
    label: `Portcullis ${PORTCULLIS_VERSION}, ${what} -> ${upstreamKind} upstream`,
    version: PORTCULLIS_VERSION,
    async start(_peer, name, own) {
      const fx = await gatewayFixtures();
      const echo = upstreamKind === 'http' ? await startEchoHttp(`echo-http-behind-${name}`) : null;
      const upstream = echo
        ? { transport: 'http', url: echo.url }
        : echoStdioUpstream(upstreamKind === 'sandboxed stdio' ? { network: 'none' } : 'off');
      // Picked before start: the token's audience is the gateway's URL.
      const port = await freePort();
      const { config, controls, clientHeaders } = variant({ name, upstream, port, fx });
      const file = writeConfig(name, flags.instructions ? checkpointsByCount(config) : config);
      const gw = own(name, NODE, [...SETTINGS.gatewayNodeArgs, GATEWAY_BIN, 'serve', '--config', file]);
      const { url, adminUrl } = await waitForListening(gw);
      return {
        url,
        adminUrl,
        headers: clientHeaders,
        controls,
        tool: 'echo__echo',
        proxy: gw,
        main: gw,
        upstreamPids: echo ? () => [echo.proc.pid!] : () => descendants(gw.pid!),
      };
    },
  };
}

/**
 * Each target: how to start it, what the callers talk to, which process is
 * "the proxy" (its CPU and peak RSS are reported) and which are the servers
 * behind it (their CPU is reported as upstream CPU).
 */
export const TARGETS: Record<string, TargetDef> = {
  'direct-http': {
    label: 'direct HTTP (client -> echo server)',
    async start(_peer, _name, own) {
      const echo = await startEchoHttp('echo-http', own);
      return {
        url: echo.url,
        tool: 'echo',
        proxy: null,
        main: echo.proc,
        upstreamPids: () => [echo.proc.pid!],
      };
    },
  },
  'direct-stdio': {
    label: 'direct stdio (bench spawns echo server)',
    async start(_peer, _name, own) {
      const proc = own('echo-stdio', NODE, [ECHO_SERVER, '--stdio'], { stdin: 'pipe' });
      return { stdio: proc, tool: 'echo', proxy: null, main: proc, upstreamPids: () => [proc.pid!] };
    },
  },
  'node-hop': {
    label: 'bare node:http reverse proxy (no security work) -> echo server (HTTP)',
    async start(_peer, _name, own) {
      const echo = await startEchoHttp('echo-http-behind-node-hop');
      const proc = own('node-hop', NODE, [NODE_HOP, '--upstream', echo.url]);
      const { url } = await waitForListening(proc);
      return { url, tool: 'echo', proxy: proc, main: proc, upstreamPids: () => [echo.proc.pid!] };
    },
  },
  'portcullis-full': portcullisTarget('full pipeline', fullPipelineConfig, 'http'),
  'portcullis-full-overlap': portcullisTarget(
    'full pipeline, durability: overlap',
    fullPipelineOverlapConfig,
    'http',
  ),
  'portcullis-full-pg': portcullisTarget('full pipeline, PostgreSQL', fullPipelinePostgresConfig, 'http'),
  'portcullis-pass': portcullisTarget('pass-through', passThroughConfig, 'http'),
  'portcullis-full-stdio': portcullisTarget('full pipeline', fullPipelineConfig, 'stdio'),
  'portcullis-full-stdio-sandboxed': portcullisTarget('full pipeline', fullPipelineConfig, 'sandboxed stdio'),
  'portcullis-open': portcullisTarget('open gateway, permit-all', openGatewayConfig, 'http'),
  'mcp-proxy': {
    label: 'mcp-proxy -> stdio upstream',
    peer: 'mcp-proxy',
    async start(peer, _name, own) {
      const port = await freePort();
      const proc = own('mcp-proxy', NODE, [
        peer!.bin,
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
        upstreamPids: () => descendants(proc.pid!),
      };
    },
  },
  supergateway: {
    label: 'supergateway (stateful) -> stdio upstream',
    peer: 'supergateway',
    async start(peer, _name, own) {
      const port = await freePort();
      const proc = own('supergateway', NODE, [
        peer!.bin,
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
        upstreamPids: () => descendants(proc.pid!),
      };
    },
  },
};

/** How a target's own process starts, and how it is warmed up once its sessions are open. */
export interface OpenOptions {
  own?: Launch;
  warmUp?: (sessions: Caller[]) => Promise<void>;
}

/** The default warm-up: every concurrency for BENCH_WARMUP_SECONDS. */
async function warmUpForSeconds(sessions: Caller[]): Promise<void> {
  // Generous: with 1 s, throughput at 1 caller kept climbing for the next ~4 s (JIT tiering).
  for (const c of SETTINGS.concurrency) await drive(sessions, c, SETTINGS.warmupSeconds);
}

/** Starts a target, opens `n` sessions (untimed) and warms everything up. */
export async function openTarget(
  name: string,
  n: number,
  { own = launch, warmUp = warmUpForSeconds }: OpenOptions = {},
): Promise<OpenTarget> {
  const def = TARGETS[name]!;
  const entry: TargetEntry = {
    name,
    label: def.label,
    status: 'ok',
    version: def.version ?? null,
    results: [],
  };
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
  try {
    const started = await def.start(peer, name, own);
    const running: Running = { ...started, procs: [] };
    if (running.controls) entry.controls = running.controls;
    if (running.adminUrl) entry.pipeline = await pipelineStages(running.adminUrl);
    running.procs = [...children].filter((c) => !before.has(c));
    let sessions: Caller[];
    const openSession = async (s: Caller) => {
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
      const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
      running.agent = agent;
      sessions = Array.from(
        { length: n },
        () => new HttpMcpSession(running.url!, agent, running.tool, running.headers),
      );
      await openSession(sessions[0]!);
      entry.firstSessionMs = performance.now() - t0;
      // Then a few at a time: stdio-upstream proxies spawn one server per session.
      for (let i = 1; i < n; i += 4) await Promise.all(sessions.slice(i, i + 4).map(openSession));
    }
    await warmUp(sessions);
    running.strays = running.upstreamPids();
    for (const pid of running.strays) descendantPids.add(pid);
    return { entry, running, sessions };
  } catch (err) {
    entry.status = 'failed';
    entry.reason = String((err as Error)?.message ?? err);
    const mine = [...children].filter((c) => !before.has(c));
    const tail = mine.map((c) => `[${c.benchName}] ${c.stderrTail.trim()}`).join('\n');
    entry.stderrTail = tail.trim().split('\n').slice(-8).join('\n');
    const strays = mine.flatMap((c) => descendants(c.pid!));
    for (const pid of strays) descendantPids.add(pid);
    await Promise.all(mine.map((c) => stopProc(c, 1000)));
    killStrays(strays);
    return { entry };
  }
}

export async function closeTarget(t: LiveTarget): Promise<void> {
  await Promise.all(t.sessions.map((s) => s.close()));
  t.running.agent?.destroy();
  // The proxy first, so it can end its own upstreams; then whatever else the target started.
  if (t.running.proxy) await stopProc(t.running.proxy);
  await Promise.all(t.running.procs.map((c) => stopProc(c)));
  await sleep(100);
  killStrays(t.running.strays ?? []);
}

/** The fixtures if a gateway target prepared them, for the cleanup at exit. */
export const preparedFixtures = () => fixtures;
