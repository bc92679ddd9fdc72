/** Statistics over the measured rounds, and the report: tables on stdout, JSON in bench/results. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { printVerdict } from './checks.ts';
import { fmt, fmtInt, fmtX, table } from './format.ts';
import { CLIENT_DESCRIPTION } from './load.ts';
import { printPerformanceTargets } from './performance-targets.ts';
import { RESULTS_DIR, ROOT } from './settings.ts';
import { printStages, summarizeStages } from './stages.ts';
import type { Report, Round, Summary, TargetEntry } from './types.ts';

/** The middle value (the upper of the two middles for an even count); null for none. */
export function median(xs: readonly number[]): number | null {
  return xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]! : null;
}

export function percentile(sorted: Float64Array, p: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? null;
}

export function summarize(c: number, rounds: Round[]): Summary {
  const lat = Float64Array.from(rounds.flatMap((r) => r.latencies)).sort();
  const calls = lat.length;
  const elapsedMs = rounds.reduce((s, r) => s + r.elapsedMs, 0);
  const perCall = (ms: number | null) => (calls > 0 && ms !== null ? (ms * 1000) / calls : null);
  const sum = (k: 'proxyCpuMs' | 'proxySysCpuMs' | 'upstreamCpuMs' | 'clientCpuMs') =>
    rounds.some((r) => r[k] === null) ? null : rounds.reduce((s, r) => s + (r[k] ?? 0), 0);
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
    maxMs: calls > 0 ? lat[calls - 1]! : null,
    proxyCpuUsPerCall: perCall(sum('proxyCpuMs')),
    /** Of which in the kernel (stime): syscalls, the audit's fsyncs, socket I/O. */
    proxySysCpuUsPerCall: perCall(sum('proxySysCpuMs')),
    upstreamCpuUsPerCall: perCall(sum('upstreamCpuMs')),
    clientCpuUsPerCall: perCall(sum('clientCpuMs')),
    stages: summarizeStages(rounds),
  };
}

/** The CPU per call that stands for a target: the proxy's, or the server's when there is none. */
const ownCpu = (entry: TargetEntry, r: Summary) =>
  entry.name.startsWith('direct-') ? r.upstreamCpuUsPerCall : r.proxyCpuUsPerCall;

export function addRatios(entries: TargetEntry[]): void {
  const base = entries.find((e) => e.name === 'direct-http' && e.status === 'ok');
  const hop = entries.find((e) => e.name === 'node-hop' && e.status === 'ok');
  const div = (a: number | null, d: number | null | undefined) => (a !== null && d ? a / d : null);
  for (const e of entries) {
    for (const r of e.results) {
      const b = base?.results.find((x) => x.concurrency === r.concurrency);
      // The proxy's CPU per call against a bare node:http hop's in the same run: the security work's share.
      const h = hop?.results.find((x) => x.concurrency === r.concurrency);
      r.proxyCpuVsNodeHop = e.name.startsWith('direct-')
        ? null
        : div(r.proxyCpuUsPerCall, h?.proxyCpuUsPerCall);
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

export function printResults(report: Report): void {
  const rows: unknown[][] = [];
  for (const e of report.targets) {
    if (e.status !== 'ok') {
      rows.push([e.name, '-', e.status, '', '', '', '', '', '', '', '', '', '', '', '']);
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
        fmtX(r.proxyCpuVsNodeHop),
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
    'CPU / hop',
  ];
  console.log(table(headers, rows, ['l']));
  console.log(
    '\nc = concurrent callers; ±% = spread of per-round calls/s (max-min)/mean; CPU = utime+stime from /proc per call;' +
      '\nproxy = the gateway/peer process; server = the echo server(s) behind it (for stdio peers: every descendant);' +
      '\nclient = this load generator. x = ratio to direct-http at the same c; x CPU compares the proxy CPU per call' +
      '\n(the server CPU for direct targets) with the direct-http server CPU per call.' +
      '\nCPU / hop = proxy CPU per call / node-hop proxy CPU per call at the same c (same run).',
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
    console.log('\ncontrols on (bench/gateway-configs.ts):');
    for (const e of withControls) console.log(`  ${e.name}: ${e.controls?.join(', ') || 'none'}`);
  }
  printStages(report);
  printVerdict(report);
  printPerformanceTargets(report);
  for (const e of report.targets) {
    if (e.status !== 'ok') console.log(`note: ${e.name} ${e.status}: ${e.reason}`);
    for (const r of e.results ?? []) {
      if (r.firstError)
        console.log(`note: ${e.name} c=${r.concurrency}: ${r.errors} errors, first: ${r.firstError}`);
    }
    if (e.stderrTail) console.log(`note: ${e.name} stderr:\n${e.stderrTail}`);
  }
}

/** The machine the run measured on. */
export interface Machine {
  cpuModel: string;
  cores: number;
  node: string;
  platform: string;
  memGB: number;
  loadavgAtStart: number[];
}

export function machine(): Machine {
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

export function printHeader(m: Machine, what: string): void {
  console.log(`Portcullis bench: ${what}`);
  console.log(`machine: ${m.cpuModel}, ${m.cores} cores, ${m.memGB} GB, ${m.platform}`);
  console.log(`node: ${m.node}; load average at start: ${m.loadavgAtStart.join(' ')}`);
  console.log(`client: ${CLIENT_DESCRIPTION}`);
}

export function writeJson(file: string, data: unknown): string {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const out = path.join(RESULTS_DIR, file);
  fs.writeFileSync(out, `${JSON.stringify(data, null, 2)}\n`);
  return path.relative(ROOT, out);
}
