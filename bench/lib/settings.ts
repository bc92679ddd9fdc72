/** Settings of a bench run: environment variables, flags, paths and the progress line. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ECHO_SERVER = path.join(ROOT, 'bench', 'echo-server.ts');
export const NODE_HOP = path.join(ROOT, 'bench', 'node-hop.ts');
/** The checkout whose gateway the Portcullis targets run (BENCH_GATEWAY_ROOT: another worktree, e.g. a base commit). */
export const GATEWAY_ROOT = path.resolve(process.env.BENCH_GATEWAY_ROOT || ROOT);
export const GATEWAY_BIN = path.join(GATEWAY_ROOT, 'bin', 'portcullis.js');
export const RESULTS_DIR = path.join(ROOT, 'bench', 'results');
export const NODE = process.execPath;
export const PROTOCOL_VERSION = '2025-11-25';
export const CALL_TIMEOUT_MS = 15_000;
/** Longer than a gateway's default 30 s upstream timeout, so a slow first handshake shows up as a figure. */
export const INIT_TIMEOUT_MS = 60_000;

export const { values: flags } = parseArgs({
  options: {
    soak: { type: 'boolean', default: false },
    micro: { type: 'boolean', default: false },
    'check-configs': { type: 'boolean', default: false },
    instructions: { type: 'boolean', default: false },
    scale: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

export const ALL_TARGETS = [
  'direct-http',
  'direct-stdio',
  'node-hop',
  'portcullis-full',
  'portcullis-full-overlap',
  'portcullis-full-pg',
  'portcullis-pass',
  'portcullis-full-stdio',
  'portcullis-full-stdio-sandboxed',
  'portcullis-open',
  'mcp-proxy',
  'supergateway',
];
const DEFAULT_TARGETS = flags.instructions
  ? ['node-hop', 'portcullis-full']
  : ALL_TARGETS.filter((t) => t !== 'portcullis-open');

const num = (name: string, def: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) die(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return n;
};
const list = (name: string, def: string[]): string[] => {
  const raw = process.env[name];
  return raw
    ? raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : def;
};

export const SETTINGS = {
  seconds: num('BENCH_SECONDS', 3),
  rounds: Math.round(num('BENCH_ROUNDS', flags.instructions ? 5 : 3)),
  concurrency: list('BENCH_CONCURRENCY', flags.instructions ? ['1'] : ['1', '8', '32']).map(Number),
  warmupSeconds: num('BENCH_WARMUP_SECONDS', 3),
  targets: list('BENCH_TARGETS', DEFAULT_TARGETS),
  peerDir: process.env.BENCH_PEER_DIR || undefined,
  soakSeconds: num('BENCH_SOAK_SECONDS', 1800),
  soakConcurrency: Math.round(num('BENCH_SOAK_CONCURRENCY', 8)),
  soakSampleSeconds: num('BENCH_SOAK_SAMPLE_SECONDS', 10),
  soakTargets: list('BENCH_SOAK_TARGETS', ['portcullis-full']),
  /** Micro-benchmarks (bench/*-bench.ts) after the A/B run: "off" skips them. */
  micro: process.env.BENCH_MICRO !== 'off',
  microTimeoutSeconds: num('BENCH_MICRO_TIMEOUT_SECONDS', 120),
  /** Extra node flags for the Portcullis processes only, e.g. "--cpu-prof --cpu-prof-dir=bench/results/prof". */
  gatewayNodeArgs: (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean),
  /** `--instructions`: calls per measured round, and untimed calls per concurrency before the first. */
  instrCalls: Math.round(num('BENCH_INSTR_CALLS', 1000)),
  instrWarmupCalls: Math.round(num('BENCH_INSTR_WARMUP_CALLS', 10_000)),
  /** `--scale`: tools the upstream lists beside echo, lists measured, policies, audit entries, idle sessions. */
  scaleTools: Math.round(num('BENCH_SCALE_TOOLS', 1000)),
  scaleLists: Math.round(num('BENCH_SCALE_LISTS', 20)),
  scalePolicies: Math.round(num('BENCH_SCALE_POLICIES', 10_000)),
  scaleAuditEntries: Math.round(num('BENCH_SCALE_AUDIT_ENTRIES', 1_000_000)),
  scaleSessions: Math.round(num('BENCH_SCALE_SESSIONS', 1000)),
  /** A process under valgrind starts tens of times slower. */
  startTimeoutMs: flags.instructions ? 600_000 : 30_000,
};

export const USAGE = `usage: npm run bench [-- --soak | --micro | --check-configs | --instructions | --scale]

environment:
  BENCH_SECONDS=3            seconds per measurement (one target, one concurrency, one round)
  BENCH_ROUNDS=3             rounds; each round visits every target at every concurrency
  BENCH_CONCURRENCY=1,8,32   concurrent callers
  BENCH_WARMUP_SECONDS=3     untimed warm-up per target and concurrency after start
  BENCH_TARGETS=...          subset of ${ALL_TARGETS.join(',')}
  BENCH_PEER_DIR=DIR         take mcp-proxy / supergateway from DIR/node_modules (default: the project's)
  BENCH_GATEWAY_NODE_ARGS=.. extra node flags for the Portcullis processes (e.g. --cpu-prof)
  BENCH_GATEWAY_ROOT=DIR     run the Portcullis targets from another checkout (e.g. a worktree of a base commit);
                             one without a control's code (src/protect, src/credentials, src/attest) runs without that control
  BENCH_FEATURES=base        run this checkout's full pipeline with only the controls issue 13's base had
                             (no masking/detectors, minted JWT or result signing): like for like with such a base
  BENCH_FEATURES=no-protect  the full pipeline with every detector off (nothing scanned, nothing masked):
                             against a run without it, what data protection adds per call
  BENCH_MICRO=off            skip the micro-benchmarks (bench/*-bench.ts) after the A/B run
  BENCH_MICRO_TIMEOUT_SECONDS=120  per micro-benchmark
  --micro                    run only the micro-benchmarks
  --check-configs            write each gateway variant's config and run \`portcullis config check\` on it
                             (BENCH_SHOW_CONFIGS=1 prints them)
  --instructions             count the instructions each target's own process runs per call, under
                             valgrind's callgrind (repeatable whatever else the machine does); targets
                             default to node-hop,portcullis-full, concurrency to 1, rounds to 5
  BENCH_INSTR_CALLS=1000     --instructions: calls per measured round
  BENCH_INSTR_WARMUP_CALLS=10000 --instructions: uncounted calls per concurrency before the rounds
  --soak                     run only the memory soak instead:
  BENCH_SOAK_SECONDS=1800    soak length per target
  BENCH_SOAK_CONCURRENCY=8   soak callers
  BENCH_SOAK_SAMPLE_SECONDS=10
  BENCH_SOAK_TARGETS=portcullis-full
  --scale                    run only the scale targets of issue 17 instead:
  BENCH_SCALE_TOOLS=1000     tools the upstream lists beside echo (a filtered tools/list through the full pipeline)
  BENCH_SCALE_LISTS=20       lists measured after a session's first
  BENCH_SCALE_POLICIES=10000 the large policy set (decision cost against 10 policies)
  BENCH_SCALE_AUDIT_ENTRIES=1000000  the large generated audit log (start-up and verify against one a tenth its size)
  BENCH_SCALE_SESSIONS=1000  idle sessions held open (gateway RSS growth)
`;

export const BENCH_T0 = performance.now();
/** A progress line on stderr, stamped with the time since the bench started. */
export function progress(text: string): void {
  const s = Math.floor((performance.now() - BENCH_T0) / 1000);
  process.stderr.write(
    `[${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}] ${text}`,
  );
}

export function die(msg: string): never {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(2);
}
