/** The shapes the bench's modules hand each other: a started target, its results, the report. */
import type http from 'node:http';
import type { Verdict } from './checks.ts';
import type { Caller, Drive } from './load.ts';
import type { MicroResult } from './micro.ts';
import type { BenchProcess, Launch } from './processes.ts';

/** A peer proxy found installed: its version and the script to run. */
export interface Peer {
  version: string;
  bin: string;
  from: string;
}

/** A started target: what the callers talk to, and which processes are the proxy and the servers. */
export interface Running {
  url?: string;
  adminUrl?: string;
  headers?: Record<string, string>;
  controls?: string[];
  /** For stdio targets: the server the bench talks to over its pipes. */
  stdio?: BenchProcess;
  tool: string;
  /** Its CPU is reported as the proxy's; null when the callers talk to the server directly. */
  proxy: BenchProcess | null;
  /** Its peak RSS is reported. */
  main: BenchProcess;
  /** The servers behind it: their CPU is reported as upstream CPU. */
  upstreamPids: () => number[];
  procs: BenchProcess[];
  agent?: http.Agent;
  strays?: number[];
}

export interface TargetDef {
  label: string;
  /** The npm package of a peer proxy, when the target is one. */
  peer?: string;
  version?: string;
  /** `own` starts the process whose CPU stands for the target (the proxy, or the server of a direct target). */
  start(peer: Peer | null, name: string, own: Launch): Promise<Omit<Running, 'procs'>>;
}

/** Stage name -> what it recorded: total seconds and how many times it ran. */
export type StageTimes = Record<string, { sumS: number; count: number }>;

/** One measured round: the calls, CPU per process kind in ms, and the stage timings (gateways only). */
export type Round = Drive & {
  proxyCpuMs: number | null;
  proxySysCpuMs: number | null;
  upstreamCpuMs: number;
  clientCpuMs: number;
  stages: StageTimes | null;
};

/** The figures of one target at one concurrency, over every round. */
export interface Summary {
  concurrency: number;
  rounds: number;
  calls: number;
  errors: number;
  firstError: string | null;
  elapsedS: number;
  callsPerSec: number;
  perRoundCallsPerSec: number[];
  spreadPct: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  meanMs: number | null;
  maxMs: number | null;
  proxyCpuUsPerCall: number | null;
  /** Of which in the kernel (stime): syscalls, the audit's fsyncs, socket I/O. */
  proxySysCpuUsPerCall: number | null;
  upstreamCpuUsPerCall: number | null;
  clientCpuUsPerCall: number | null;
  stages: Record<string, { usPerCall: number | null; count: number }> | null;
  /** Proxy CPU per call over node-hop's at the same concurrency; null for direct targets or without node-hop. */
  proxyCpuVsNodeHop?: number | null;
  vsDirectHttp?: {
    p50: number | null;
    p99: number | null;
    callsPerSec: number | null;
    cpuPerCall: number | null;
  } | null;
}

/** What the report says of one target. */
export interface TargetEntry {
  name: string;
  label: string;
  status: 'ok' | 'skipped' | 'failed' | 'died';
  version: string | null;
  results: Summary[];
  reason?: string;
  controls?: string[];
  pipeline?: string[];
  firstSessionMs?: number;
  stderrTail?: string;
  peakRssMB?: number | null;
  upstreamProcs?: number;
  upstreamRssMB?: number;
  sessions?: number;
  soak?: Soak;
}

/** A target after `openTarget`: running, with its callers, unless it was skipped or failed. */
export interface OpenTarget {
  entry: TargetEntry;
  running?: Running;
  sessions?: Caller[];
}

export type LiveTarget = Required<OpenTarget>;

export interface Report {
  kind: 'ab';
  targets: TargetEntry[];
  verdict: Verdict;
  micro: MicroResult[];
  [key: string]: unknown;
}

/** One memory sample of a soak. */
export interface SoakSample {
  atS: number;
  rssMB: number | null;
  fds: number | null;
}

/** What a soak found for one target. */
export interface Soak {
  seconds: number;
  concurrency: number;
  calls: number;
  errors: number;
  callsPerSec: number;
  p50Ms: number | null;
  p99Ms: number | null;
  rssFirstSampleMB: number | null;
  fdsFirst: number | null;
  fdsLast: number | null;
  fdsMax: number;
  rssBaselineMB: number | null;
  rssBaselineAtS: number;
  rssLastMB: number | null;
  rssGrowthPct: number | null;
  /** Medians of the second tenth of the samples and of the last tenth, and the growth between them. */
  rssWindowBaselineMB: number | null;
  rssWindowLastMB: number | null;
  rssWindowGrowthPct: number | null;
  fdsWindowGrowthPct: number | null;
  peakRssMB: number | null;
  samples: SoakSample[];
}
