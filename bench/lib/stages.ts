/** The gateway's per-stage timings: scraped from its admin listener around each round, and their table. */
import http from 'node:http';
import { fmtInt, table } from './format.ts';
import type { Report, Round, StageTimes, Summary } from './types.ts';

/** GETs a URL on loopback and resolves with the body (status 200 only). */
function httpGetText(url: string, timeoutMs = 5000): Promise<string> {
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
function parseStageMetrics(text: string): StageTimes {
  const out: StageTimes = {};
  const re = /^portcullis_stage_duration_seconds_(sum|count)\{stage="([^"]+)"\} (\S+)$/gm;
  for (const [, kind, stage, value] of text.matchAll(re)) {
    const times = out[stage!] ?? { sumS: 0, count: 0 };
    out[stage!] = times;
    times[kind === 'sum' ? 'sumS' : 'count'] = Number(value);
  }
  return out;
}

/** The gateway's stage names in pipeline order (admin `/status`), for the stage table. */
export async function pipelineStages(adminUrl: string): Promise<string[]> {
  try {
    const status = JSON.parse(await httpGetText(`${adminUrl}/status`));
    return Array.isArray(status.stages) ? status.stages : [];
  } catch {
    return [];
  }
}

export async function scrapeStages(adminUrl: string): Promise<StageTimes> {
  return parseStageMetrics(await httpGetText(`${adminUrl}/metrics`));
}

/** What each stage recorded between two scrapes: total seconds and how many times it ran. */
export function stageDelta(before: StageTimes, after: StageTimes): StageTimes {
  const out: StageTimes = {};
  for (const [stage, a] of Object.entries(after)) {
    const b = before[stage] ?? { sumS: 0, count: 0 };
    out[stage] = { sumS: a.sumS - b.sumS, count: a.count - b.count };
  }
  return out;
}

/**
 * Per stage: wall time per call in µs (the gateway's own stage timings, summed
 * over every call of every round, divided by the calls made, errors included)
 * and how many times it ran. Null for targets without an admin listener.
 */
export function summarizeStages(rounds: Round[]): Summary['stages'] {
  if (rounds.some((r) => !r.stages)) return null;
  const calls = rounds.reduce((s, r) => s + r.latencies.length + r.errors, 0);
  const out: StageTimes = {};
  for (const r of rounds) {
    for (const [stage, d] of Object.entries(r.stages ?? {})) {
      const times = out[stage] ?? { sumS: 0, count: 0 };
      out[stage] = times;
      times.sumS += d.sumS;
      times.count += d.count;
    }
  }
  return Object.fromEntries(
    Object.entries(out).map(([stage, d]) => [
      stage,
      { usPerCall: calls > 0 ? (d.sumS * 1e6) / calls : null, count: d.count },
    ]),
  );
}

/** Per-stage µs per call of the Portcullis targets, columns in pipeline order. */
export function printStages(report: Report): void {
  const gws = report.targets.filter((e) => e.status === 'ok' && e.results.some((r) => r.stages));
  if (gws.length === 0) return;
  const names: string[] = [];
  for (const e of gws) {
    for (const n of e.pipeline ?? []) if (!names.includes(n)) names.push(n);
  }
  for (const e of gws) {
    for (const r of e.results)
      for (const n of Object.keys(r.stages ?? {})) if (!names.includes(n)) names.push(n);
  }
  const rows: unknown[][] = [];
  for (const e of gws) {
    for (const r of e.results) {
      const us = names.map((n) => r.stages?.[n]?.usPerCall ?? null);
      const total = us.reduce((a: number, v) => a + (v ?? 0), 0);
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
