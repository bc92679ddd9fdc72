/** The targets of issue 17 (performance and scale), measured side by side in one run; their table. */
import type { Check } from './checks.ts';
import { fmtX, table } from './format.ts';
import type { FsyncCost } from './fsync.ts';
import type { Report, Summary, TargetEntry } from './types.ts';

type Figure = 'p50Ms' | 'proxyCpuUsPerCall' | 'callsPerSec';

/** Each target as a ratio (or, for the strictest mode, a latency over its budget), with met / MISSED. */
export function performanceTargets(entries: TargetEntry[], fsync: FsyncCost | null): Check[] {
  const ok = (name: string) => entries.find((e) => e.name === name && e.status === 'ok');
  const at = (e: TargetEntry | undefined, c: number): Summary | undefined =>
    e?.results.find((r) => r.concurrency === c);
  const ratio = (a: number | null | undefined, b: number | null | undefined) =>
    a !== null && a !== undefined && b ? a / b : null;
  const checks: Check[] = [];
  const add = (check: string, values: Check['values'], limit: number, cmp: Check['cmp']) => {
    const known = values.map((v) => v.value).filter((v): v is number => v !== null && v !== undefined);
    const within = (v: number) => (cmp === '<=' ? v <= limit : cmp === '>=' ? v >= limit : v < limit);
    checks.push({
      check,
      values,
      limit,
      cmp,
      pass: known.length ? known.every(within) : null,
      bareHop: null,
    });
  };
  /** `figure` of `a` over `b`'s at each concurrency both ran. */
  const versus = (a: string, b: string, figure: Figure, cs: number[]) =>
    cs
      .filter((c) => at(ok(a), c) && at(ok(b), c))
      .map((c) => ({ c, value: ratio(at(ok(a), c)![figure], at(ok(b), c)![figure]) }));
  const full = 'portcullis-full';
  add(
    '1. gateway CPU/call / node-hop, 1 and 8 callers',
    versus(full, 'node-hop', 'proxyCpuUsPerCall', [1, 8]),
    2,
    '<=',
  );
  add(
    '2. p50 / node-hop p50, 1 caller (default durability: record)',
    versus(full, 'node-hop', 'p50Ms', [1]),
    1.5,
    '<=',
  );
  // The default is also the strictest mode.
  const strict = at(ok(full), 1)?.p50Ms;
  const hop = at(ok('node-hop'), 1)?.p50Ms;
  add(
    `2. p50 / (node-hop p50 + one fsync${fsync ? ` of ${(fsync.p50Ms * 1000).toFixed(0)} µs` : ''}), 1 caller (durability: record)`,
    [{ c: 1, value: fsync && hop ? ratio(strict, hop + fsync.p50Ms) : null }],
    1,
    '<=',
  );
  add(
    '2. (information) p50 in durability overlap / in record, 1 and 8 callers',
    versus('portcullis-full-overlap', full, 'p50Ms', [1, 8]),
    1,
    '<=',
  );
  add('3. calls/s / node-hop calls/s, 8 callers', versus(full, 'node-hop', 'callsPerSec', [8]), 0.8, '>=');
  for (const peer of ['mcp-proxy', 'supergateway']) {
    add(`4. p50 / ${peer} p50`, versus(full, peer, 'p50Ms', [1, 8, 32]), 1, '<');
    add(`4. CPU/call / ${peer} CPU/call`, versus(full, peer, 'proxyCpuUsPerCall', [1, 8, 32]), 1, '<');
  }
  const pg = 'portcullis-full-pg';
  add('5. PostgreSQL / SQLite mode: p50', versus(pg, full, 'p50Ms', [1, 8, 32]), 1.3, '<=');
  add('5. PostgreSQL / SQLite mode: CPU/call', versus(pg, full, 'proxyCpuUsPerCall', [1, 8, 32]), 1.3, '<=');
  add('5. SQLite / PostgreSQL mode: calls/s', versus(full, pg, 'callsPerSec', [1, 8, 32]), 1.3, '<=');
  return checks;
}

export function printPerformanceTargets(report: Report): void {
  const checks = report.performance as Check[] | undefined;
  if (!checks?.length) return;
  const fsync = report.fsync as FsyncCost | null | undefined;
  const rows = checks.map((k) => [
    k.check,
    k.values.map((x) => (k.values.length > 1 ? `c=${x.c}: ${fmtX(x.value)}` : fmtX(x.value))).join(', '),
    `${k.cmp} ${k.limit.toFixed(2)}x`,
    k.pass === null ? 'n/a (target not run)' : k.pass ? 'met' : 'MISSED',
  ]);
  console.log(
    `\ntargets of issue 17 (same run)\n${table(['check', 'measured', 'target', 'result'], rows, ['l', 'l', 'l', 'l'])}`,
  );
  if (fsync)
    console.log(
      `one fsync here: p50 ${(fsync.p50Ms * 1000).toFixed(0)} µs, p90 ${(fsync.p90Ms * 1000).toFixed(0)} µs ` +
        `(fdatasync of a 300-byte append, ${fsync.samples} times, in the run's temp folder).`,
    );
  console.log(
    'Scale (6) and the soak (7) are separate runs: npm run bench -- --scale, npm run bench -- --soak.',
  );
}
