/** The kinds of run: the interleaved A/B, micro-benchmarks only, and the config check. */
import { execFileSync } from 'node:child_process';
import {
  fullPipelineConfig,
  fullPipelinePostgresConfig,
  openGatewayConfig,
  passThroughConfig,
} from '../gateway-configs.ts';
import { verdict } from './checks.ts';
import { measureFsync } from './fsync.ts';
import { CLIENT_DESCRIPTION } from './load.ts';
import { measureRound, vmMB } from './measure.ts';
import { printMicro, runMicroBenches } from './micro.ts';
import { performanceTargets } from './performance-targets.ts';
import { isEchoServer } from './processes.ts';
import { addRatios, machine, printHeader, printResults, summarize, writeJson } from './report.ts';
import { GATEWAY_BIN, NODE, progress, SETTINGS } from './settings.ts';
import { closeTarget, echoStdioUpstream, gatewayFixtures, openTarget, writeConfig } from './targets.ts';
import type { LiveTarget, OpenTarget, Report, Round } from './types.ts';

const isLive = (t: OpenTarget): t is LiveTarget => t.running !== undefined;

export async function abRun() {
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
  // Before any target runs: the strictest durability target is node-hop's p50 plus one fsync of this disk.
  const fsync = measureFsync();
  const open: OpenTarget[] = [];
  for (const name of SETTINGS.targets) {
    progress(`starting ${name} (${maxC} sessions, ${SETTINGS.warmupSeconds} s warm-up per concurrency)\n`);
    open.push(await openTarget(name, maxC));
  }
  const live = open.filter(isLive);
  const samples = new Map(
    live.map((t) => [t.entry.name, new Map(SETTINGS.concurrency.map((c): [number, Round[]] => [c, []]))]),
  );
  for (let round = 0; round < SETTINGS.rounds; round++) {
    for (const [ci, c] of SETTINGS.concurrency.entries()) {
      // Round-robin, with the order rotated so no target always goes first.
      const k = (round + ci) % Math.max(1, live.length);
      for (const t of [...live.slice(k), ...live.slice(0, k)]) {
        const r = await measureRound(t, c);
        samples.get(t.entry.name)!.get(c)!.push(r);
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
    t.entry.results = SETTINGS.concurrency.map((c) => summarize(c, samples.get(t.entry.name)!.get(c)!));
    const upstream = t.running.upstreamPids().filter(isEchoServer);
    t.entry.peakRssMB = vmMB(t.running.main.pid!, 'VmHWM');
    t.entry.upstreamProcs = upstream.length;
    t.entry.upstreamRssMB = upstream.reduce((s, pid) => s + (vmMB(pid, 'VmRSS') ?? 0), 0);
    t.entry.sessions = t.running.stdio ? 1 : maxC;
  }
  for (const t of live) await closeTarget(t);
  const entries = open.map((t) => t.entry);
  addRatios(entries);
  const micro = SETTINGS.micro ? await runMicroBenches() : [];
  const report: Report = {
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
    fsync,
    performance: performanceTargets(entries, fsync),
    micro,
  };
  console.log('');
  printResults(report);
  printMicro(micro);
  console.log(`\nwrote ${writeJson('latest.json', report)} (${report.durationS} s)`);
}

/** `--micro`: only the micro-benchmarks. */
export async function microRun() {
  printHeader(machine(), 'micro-benchmarks only (bench/*-bench.ts)');
  const micro = await runMicroBenches();
  printMicro(micro);
  console.log(`\nwrote ${writeJson('micro-latest.json', { kind: 'micro', machine: machine(), micro })}`);
}

/** `--check-configs`: writes every gateway variant's config and validates it with `portcullis config check`. */
export async function checkConfigsRun() {
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
      let verdictText: string;
      try {
        verdictText = execFileSync(NODE, [GATEWAY_BIN, 'config', 'check', file], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, NODE_OPTIONS: '' },
        }).trim();
      } catch (err) {
        bad++;
        const e = err as { status?: number; stderr?: string; message?: string };
        verdictText = `INVALID (exit ${e.status}): ${String(e.stderr ?? e.message).trim()}`;
      }
      console.log(
        `${vname} / ${uname} upstream, controls: ${controls.join(', ') || 'none'}\n  ${verdictText}`,
      );
      if (process.env.BENCH_SHOW_CONFIGS) console.log(JSON.stringify(config, null, 2));
    }
  }
  if (bad > 0) process.exitCode = 1;
}
