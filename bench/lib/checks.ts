/** The performance targets, as ratios measured in the run, and their table. */
import { fmtX, table } from './format.ts';
import type { Report, Summary, TargetEntry } from './types.ts';

/** One check: the measured figure(s), the limit, whether every figure is within it, and the bare hop's figure. */
export interface Check {
  check: string;
  values: { c: number; value: number | null | undefined }[];
  limit: number;
  cmp: '<=' | '>=' | '<';
  pass: boolean | null;
  bareHop: number | null | undefined;
}

export interface Verdict {
  fullPipelineControls: string[] | null;
  checks: Check[];
}

/**
 * The targets, as ratios measured in this run. Each check: the
 * measured figure(s), the limit, and whether every figure is within it.
 */
export function verdict(entries: TargetEntry[]): Verdict {
  const ok = (name: string) => entries.find((e) => e.name === name && e.status === 'ok');
  const at = (e: TargetEntry | undefined, c: number) => e?.results.find((r) => r.concurrency === c);
  const checks: Check[] = [];
  const add = (
    check: string,
    values: Check['values'],
    limit: number,
    cmp: Check['cmp'],
    bareHop: number | null | undefined = null,
  ) => {
    const known = values.map((v) => v.value).filter((v): v is number => v !== null && v !== undefined);
    const pass =
      known.length === 0
        ? null
        : known.every((v) => (cmp === '<=' ? v <= limit : cmp === '>=' ? v >= limit : v < limit));
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
      const pairs = gw.results
        .map((r): [Summary, Summary | undefined] => [r, at(peer, r.concurrency)])
        .filter((pair): pair is [Summary, Summary] => pair[1] !== undefined);
      const div = (a: number | null, b: number | null) => (a !== null && b ? a / b : null);
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

export function printVerdict(report: Report): void {
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
    'bare hop = the same ratio for node-hop, a node:http reverse proxy doing no security work (bench/node-hop.ts):' +
      '\nwhat one extra Node process in the path costs on this machine before any control runs.',
  );
  console.log(
    `portcullis-full runs with: ${v.fullPipelineControls?.join(', ') || 'no controls (none has landed in the config schema yet)'}.` +
      '\nCPU/call: the gateway process vs the peer process; stdio peers also run an echo server per session' +
      '\n(see server µs/call). Memory over a 10-minute soak is not part of this run: npm run bench -- --soak.',
  );
}
