/**
 * `--instructions`: the instructions each target's own process runs per call,
 * counted by valgrind's callgrind over a fixed number of calls. Unlike CPU
 * time, the count does not depend on what else the machine is doing, so two
 * runs (or two commits) can be compared to a percent or so.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { fmt, fmtInt, fmtX, table } from './format.ts';
import { driveCalls } from './load.ts';
import { type Launch, launch } from './processes.ts';
import { machine, printHeader, writeJson } from './report.ts';
import { die, GATEWAY_ROOT, progress, RESULTS_DIR, ROOT, SETTINGS } from './settings.ts';
import { closeTarget, openTarget } from './targets.ts';
import type { TargetEntry } from './types.ts';

const run = promisify(execFile);

/** One target at one concurrency: instructions and I/O syscalls per call in each round. */
export interface InstructionCount {
  target: string;
  concurrency: number;
  callsPerRound: number;
  errors: number;
  perRound: number[];
  /** The main thread's share (JS and the event loop; the rest is GC helpers and background compilation). */
  mainPerRound: number[];
  median: number;
  mainMedian: number;
  spreadPct: number;
  ioSyscallsPerCall: number | null;
  vsNodeHop?: number | null;
}

/** Callgrind's dumps stay for `callgrind_annotate` (native code only: JIT-compiled JS has no symbols). */
const CALLGRIND_DIR = path.join(RESULTS_DIR, 'callgrind');
const outPrefix = (name: string) => path.join(CALLGRIND_DIR, `${name}.out`);

/** Starts the process under callgrind with instrumentation off: it runs uncounted until `--instr=on`. */
const underCallgrind: Launch = (name, command, args, opts) => {
  fs.mkdirSync(CALLGRIND_DIR, { recursive: true });
  const tool = [
    '--tool=callgrind',
    '--instr-atstart=no',
    '--separate-threads=yes',
    `--callgrind-out-file=${outPrefix(name)}.%p`,
    command,
  ];
  return launch(name, 'valgrind', [...tool, ...args], opts);
};

const control = (pid: number, ...args: string[]) => run('callgrind_control', [...args, String(pid)]);

/** Instructions of one dump: every thread, and the main one (thread 1: JS, the event loop) apart. */
interface Dumped {
  all: number;
  main: number;
}

/**
 * Dumps the counters (callgrind zeroes them after a dump) and sums the newest
 * dump's per-thread files (`NAME.out.PID.PART-THREAD`).
 */
async function dumpInstructions(name: string, pid: number): Promise<Dumped> {
  await control(pid, '--dump');
  const base = `${path.basename(outPrefix(name))}.${pid}.`;
  const parts = fs
    .readdirSync(CALLGRIND_DIR)
    .filter((f) => f.startsWith(base))
    .map((f) => {
      const [part, thread] = f.slice(base.length).split('-').map(Number);
      return { file: f, part: part ?? 0, thread: thread ?? 1 };
    });
  const newest = Math.max(...parts.map((p) => p.part));
  if (!Number.isFinite(newest)) throw new Error(`callgrind wrote no dump for ${name}`);
  const out = { all: 0, main: 0 };
  for (const p of parts.filter((x) => x.part === newest)) {
    const text = fs.readFileSync(path.join(CALLGRIND_DIR, p.file), 'utf8');
    const totals = text.match(/^(?:totals|summary): (\d+)/m);
    if (!totals) throw new Error(`no totals in ${p.file}`);
    out.all += Number(totals[1]);
    if (p.thread === 1) out.main += Number(totals[1]);
  }
  return out;
}

/** read + write syscalls so far (/proc/PID/io), or null where the kernel does not say. */
function ioSyscalls(pid: number): number | null {
  try {
    const io = fs.readFileSync(`/proc/${pid}/io`, 'utf8');
    const n = (k: string) => Number(io.match(new RegExp(`^${k}: (\\d+)`, 'm'))?.[1]);
    const sum = n('syscr') + n('syscw');
    return Number.isFinite(sum) ? sum : null;
  } catch {
    return null;
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** Rounds of a fixed number of calls at concurrency `c`, counters zeroed before each, dumped after. */
async function countRounds(
  name: string,
  pid: number,
  sessions: Parameters<typeof driveCalls>[0],
  c: number,
): Promise<InstructionCount> {
  const perRound: number[] = [];
  const mainPerRound: number[] = [];
  let errors = 0;
  let io = 0;
  let ioKnown = true;
  for (let round = 0; round < SETTINGS.rounds; round++) {
    await control(pid, '--zero');
    const io0 = ioSyscalls(pid);
    const r = await driveCalls(sessions, c, SETTINGS.instrCalls);
    const io1 = ioSyscalls(pid);
    const counted = await dumpInstructions(name, pid);
    errors += r.errors;
    if (io0 === null || io1 === null) ioKnown = false;
    else io += io1 - io0;
    perRound.push(counted.all / SETTINGS.instrCalls);
    mainPerRound.push(counted.main / SETTINGS.instrCalls);
    progress(
      `round ${round + 1}/${SETTINGS.rounds} c=${c} ${name}: ${fmtInt(counted.all / SETTINGS.instrCalls)} instructions/call` +
        ` (main thread ${fmtInt(counted.main / SETTINGS.instrCalls)})\n`,
    );
  }
  const mid = median(perRound);
  return {
    target: name,
    concurrency: c,
    callsPerRound: SETTINGS.instrCalls,
    errors,
    perRound,
    mainPerRound,
    median: mid,
    mainMedian: median(mainPerRound),
    spreadPct: ((Math.max(...perRound) - Math.min(...perRound)) / mid) * 100,
    ioSyscallsPerCall: ioKnown ? io / (SETTINGS.instrCalls * SETTINGS.rounds) : null,
  };
}

/** One target: started under callgrind, warmed up uncounted, then counted at every concurrency. */
async function countTarget(name: string): Promise<{ entry: TargetEntry; counts: InstructionCount[] }> {
  progress(`starting ${name} under callgrind (${SETTINGS.instrWarmupCalls} warm-up calls per concurrency)\n`);
  const maxC = Math.max(...SETTINGS.concurrency);
  const t = await openTarget(name, maxC, {
    own: underCallgrind,
    warmUp: async (sessions) => {
      for (const c of SETTINGS.concurrency) await driveCalls(sessions, c, SETTINGS.instrWarmupCalls);
    },
  });
  if (!t.running || !t.sessions) return { entry: t.entry, counts: [] };
  const own = t.running.proxy ?? t.running.main;
  const counts: InstructionCount[] = [];
  try {
    await control(own.pid!, '--instr=on');
    for (const c of SETTINGS.concurrency) counts.push(await countRounds(name, own.pid!, t.sessions, c));
  } finally {
    await closeTarget({ entry: t.entry, running: t.running, sessions: t.sessions });
  }
  return { entry: t.entry, counts };
}

const gatewayCommit = () => {
  try {
    return execFileSync('git', ['-C', GATEWAY_ROOT, 'rev-parse', '--short', 'HEAD'], {
      encoding: 'utf8',
    }).trim();
  } catch {
    return 'unknown';
  }
};

export async function instructionsRun() {
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
  } catch {
    die('--instructions needs valgrind (with callgrind_control) on PATH');
  }
  const gateway = `${path.relative(ROOT, GATEWAY_ROOT) || '.'} at ${gatewayCommit()}`;
  printHeader(
    machine(),
    `instructions per call under callgrind, ${SETTINGS.rounds} rounds x ${SETTINGS.instrCalls} calls x ` +
      `${SETTINGS.concurrency.join('/')} callers; gateway from ${gateway}`,
  );
  const entries: TargetEntry[] = [];
  const counts: InstructionCount[] = [];
  for (const name of SETTINGS.targets) {
    const done = await countTarget(name);
    entries.push(done.entry);
    counts.push(...done.counts);
  }
  for (const k of counts) {
    const hop = counts.find((h) => h.target === 'node-hop' && h.concurrency === k.concurrency);
    k.vsNodeHop = hop ? k.median / hop.median : null;
  }
  printInstructions(counts, entries);
  const report = {
    kind: 'instructions',
    machine: machine(),
    gateway,
    settings: SETTINGS,
    targets: entries,
    counts,
  };
  console.log(`\nwrote ${writeJson('instructions-latest.json', report)}`);
  if (entries.some((e) => e.status !== 'ok') || counts.some((k) => k.errors > 0)) process.exitCode = 1;
}

function printInstructions(counts: InstructionCount[], entries: TargetEntry[]): void {
  const rows = counts.map((k) => [
    k.target,
    k.concurrency,
    fmtInt(k.median),
    fmt(k.spreadPct, 1),
    fmtInt(k.mainMedian),
    fmtX(k.vsNodeHop),
    fmt(k.ioSyscallsPerCall, 1),
    k.errors,
  ]);
  const headers = [
    'target',
    'c',
    'instructions/call',
    '±%',
    'main thread',
    'x node-hop',
    'I/O syscalls/call',
    'err',
  ];
  console.log(`\n${table(headers, rows, ['l'])}`);
  console.log(
    '\ninstructions/call = median over the rounds of the instructions the process ran (every thread, user' +
      '\nspace only) divided by the calls; ±% = (max-min)/median over the rounds; x node-hop = the ratio to' +
      '\nnode-hop at the same c; I/O syscalls/call = read + write syscalls (/proc/PID/io).' +
      '\nThe process is the proxy, or the echo server for direct targets.',
  );
  for (const e of entries) if (e.status !== 'ok') console.log(`note: ${e.name} ${e.status}: ${e.reason}`);
  for (const k of counts)
    if (k.errors) console.log(`note: ${k.target} c=${k.concurrency}: ${k.errors} errors`);
}
