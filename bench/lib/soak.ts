/** The memory soak: a long run at fixed concurrency, sampling RSS and open descriptors. */
import { fmt, fmtInt, table } from './format.ts';
import type { Drive } from './load.ts';
import { CLIENT_DESCRIPTION, drive } from './load.ts';
import { openFds, vmMB } from './measure.ts';
import { machine, median, percentile, printHeader, writeJson } from './report.ts';
import { die, progress, SETTINGS } from './settings.ts';
import { closeTarget, openTarget, TARGETS } from './targets.ts';
import type { SoakSample, TargetEntry } from './types.ts';

export async function soakRun() {
  const m = machine();
  const c = SETTINGS.soakConcurrency;
  printHeader(
    m,
    `memory soak, ${SETTINGS.soakSeconds} s at ${c} callers per target (${SETTINGS.soakTargets.join(', ')})`,
  );
  const startedAt = new Date();
  const results: TargetEntry[] = [];
  for (const name of SETTINGS.soakTargets) {
    if (!TARGETS[name]) die(`unknown target ${name}`);
    progress(`starting ${name}\n`);
    const t = await openTarget(name, c);
    if (!t.running || !t.sessions) {
      results.push(t.entry);
      continue;
    }
    const pid = t.running.main.pid!;
    const samplesMB: SoakSample[] = [];
    const rounds: Drive[] = [];
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
    const firstSample = samplesMB[0]!;
    const baseSample = samplesMB[Math.floor(samplesMB.length / 10)]!;
    const lastSample = samplesMB[samplesMB.length - 1]!;
    const first = firstSample.rssMB;
    const base = baseSample.rssMB;
    const last = lastSample.rssMB;
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
      fdsFirst: firstSample.fds,
      fdsLast: lastSample.fds,
      fdsMax: Math.max(...samplesMB.map((x) => x.fds ?? 0)),
      rssBaselineMB: base,
      rssBaselineAtS: baseSample.atS,
      rssLastMB: last,
      rssGrowthPct: base && last ? ((last - base) / base) * 100 : null,
      ...windowGrowth(samplesMB),
      peakRssMB: vmMB(pid, 'VmHWM'),
      samples: samplesMB,
    };
    results.push(t.entry);
    await closeTarget({ entry: t.entry, running: t.running, sessions: t.sessions });
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
      '\nbaseline = the sample at a tenth of the soak (the heap sizes itself first); growth = last vs baseline (one sample each;' +
      '\nthe verdict below compares window medians instead);' +
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
  for (const e of results) if (e.soak) console.log(soakVerdict(e.name, e.soak));
  console.log(`\nwrote ${writeJson('soak-latest.json', report)}`);
}

/**
 * Growth as the median of the last tenth of the samples against the median of
 * the tenth after the first (once the heap has sized itself). One sample lands
 * wherever the collector is in its cycle: RSS at 8 callers swings by 20 % or
 * more within a minute with no trend, so a last sample against a baseline
 * sample says more about that phase than about a leak; a window's median does not.
 */
function windowGrowth(samples: SoakSample[]) {
  const tenth = Math.max(1, Math.floor(samples.length / 10));
  const base = samples.slice(tenth, 2 * tenth);
  const last = samples.slice(-tenth);
  const pct = (a: number | null, b: number | null) => (a && b !== null ? ((b - a) / a) * 100 : null);
  const known = (xs: (number | null | undefined)[]) => xs.filter((x): x is number => typeof x === 'number');
  const rssBase = median(known(base.map((x) => x.rssMB)));
  const rssLast = median(known(last.map((x) => x.rssMB)));
  const fdsBase = median(known(base.map((x) => x.fds)));
  const fdsLast = median(known(last.map((x) => x.fds)));
  return {
    rssWindowBaselineMB: rssBase,
    rssWindowLastMB: rssLast,
    rssWindowGrowthPct: pct(rssBase, rssLast),
    fdsWindowGrowthPct: pct(fdsBase, fdsLast),
  };
}

/** Issue 17's target 7: memory and descriptors flat within 10 % (window medians, see `windowGrowth`), zero errors. */
export function soakVerdict(name: string, soak: NonNullable<TargetEntry['soak']>): string {
  const rss = soak.rssWindowGrowthPct;
  const fds = soak.fdsWindowGrowthPct;
  const met = soak.errors === 0 && rss !== null && rss <= 10 && fds !== null && fds <= 10;
  return (
    `target 7 (issue 17), ${name}: ${Math.round(soak.seconds / 60)} min at ${soak.concurrency} callers: ` +
    `RSS ${fmt(rss, 1)}% (median ${fmt(soak.rssWindowBaselineMB, 1)} -> ${fmt(soak.rssWindowLastMB, 1)} MB), ` +
    `fds ${fmt(fds, 1)}%, last tenth of the samples against the second tenth; single samples ` +
    `${fmt(soak.rssGrowthPct, 1)}%; ${soak.errors} errors (target: within 10 %, zero errors): ${met ? 'met' : 'MISSED'}`
  );
}
