/** Micro-benchmarks other areas add as bench/*-bench.ts, each run alone. */
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { fmt } from './format.ts';
import { launch, signalGroup } from './processes.ts';
import { NODE, progress, ROOT, SETTINGS } from './settings.ts';

/** What one micro-benchmark printed, or why it is missing. */
export interface MicroResult {
  file: string;
  status: string;
  seconds?: number;
  output?: string;
  note?: string;
  json?: unknown[];
  stderrTail?: string;
}

/** The ones the issue asks for; any other bench/*-bench.ts runs too. */
const EXPECTED_MICRO = [
  { what: 'policy decisions/s (issue 5)', files: ['policy-bench.ts'] },
  { what: 'audit appends/s (issue 6)', files: ['audit-bench.ts'] },
  { what: 'JWT verifications/s (issue 4)', files: ['jwt-bench.ts', 'identity-bench.ts'] },
  { what: 'masking MB/s', files: ['masking-bench.ts', 'protect-bench.ts'] },
  { what: 'result signing µs (issue 16)', files: ['attest-bench.ts'] },
];

/** Runs every bench/*-bench.ts in turn, alone on the machine; collects what each prints. */
export async function runMicroBenches(): Promise<MicroResult[]> {
  const files = fs
    .readdirSync(path.join(ROOT, 'bench'))
    .filter((f) => f.endsWith('-bench.ts'))
    .sort();
  const out: MicroResult[] = [];
  for (const file of files) out.push(await runMicroBench(file));
  for (const exp of EXPECTED_MICRO) {
    if (!exp.files.some((f) => files.includes(f))) {
      out.push({ file: exp.files.join(' | '), status: 'absent', note: `${exp.what}: not added yet` });
    }
  }
  return out;
}

async function runMicroBench(file: string): Promise<MicroResult> {
  progress(`micro-benchmark bench/${file}\n`);
  const t0 = performance.now();
  const proc = launch(file, NODE, [path.join(ROOT, 'bench', file)]);
  let stdout = '';
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (d: string) => {
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
  const result: MicroResult = {
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

export function printMicro(micro: MicroResult[]): void {
  if (!SETTINGS.micro) {
    console.log('\nmicro-benchmarks: skipped (BENCH_MICRO=off)');
    return;
  }
  console.log('\nmicro-benchmarks (bench/*-bench.ts, each run alone after the A/B run)');
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
