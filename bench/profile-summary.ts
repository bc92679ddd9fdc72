#!/usr/bin/env node
/**
 * Where a process spent its CPU: self time of a V8 `.cpuprofile` (from
 * `node --cpu-prof`) grouped by source file / npm package and by function.
 *
 *   node bench/profile-summary.ts FILE.cpuprofile [--top 25]
 *   node bench/profile-summary.ts DIR          # the newest .cpuprofile in DIR
 *
 * Idle time is left out of the percentages: they are shares of busy time. V8
 * samples wall time on the main thread, so a synchronous call that blocks in
 * the kernel (an fsync under node:sqlite) counts as busy time of its caller.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The parts of a V8 `.cpuprofile` read here. */
interface CpuProfile {
  startTime: number;
  endTime: number;
  samples?: number[];
  nodes: ProfileNode[];
}
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' } },
});
if (positionals.length !== 1) {
  process.stderr.write('usage: node bench/profile-summary.ts FILE.cpuprofile|DIR [--top N]\n');
  process.exit(2);
}

function newestProfile(dir: string): string {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(dir, f))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  if (files.length === 0) throw new Error(`no .cpuprofile in ${dir}`);
  return files[0]!;
}

/** A readable place for a script URL: a project path, an npm package, or a node: built-in. */
function placeOf(url: string): string {
  if (!url) return '(native / V8)';
  if (url.startsWith('node:')) return url;
  const file = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = file.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = file.slice(nm + '/node_modules/'.length).split('/');
    const [scope = '', name = ''] = rest;
    return `npm:${scope.startsWith('@') ? `${scope}/${name}` : scope}`;
  }
  return path.relative(ROOT, file) || file;
}

const SPECIAL = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

function summarize(file: string, top: number): void {
  const prof: CpuProfile = JSON.parse(fs.readFileSync(file, 'utf8'));
  const totalUs = prof.endTime - prof.startTime;
  const samples = prof.samples?.length ?? 0;
  const usPerSample = samples > 0 ? totalUs / samples : 0;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  // Self time from the sample stream (hitCount is not always filled in).
  const hits = new Map<number, number>();
  for (const id of prof.samples ?? []) hits.set(id, (hits.get(id) ?? 0) + 1);
  const byPlace = new Map<string, number>();
  const byFn = new Map<string, number>();
  let idleUs = 0;
  for (const [id, n] of hits) {
    const node = byId.get(id)!;
    const us = n * usPerSample;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const place = SPECIAL.has(functionName) ? functionName : placeOf(url);
    byPlace.set(place, (byPlace.get(place) ?? 0) + us);
    const fn = SPECIAL.has(functionName)
      ? functionName
      : `${functionName || '(anonymous)'}  ${place}:${lineNumber + 1}`;
    byFn.set(fn, (byFn.get(fn) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  // Inclusive time of the project's own functions: every sample whose stack passes through one.
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map<string, number>();
  for (const [id, n] of hits) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const { functionName, url, lineNumber } = byId.get(cur)!.callFrame;
      const place = placeOf(url);
      if (!place.startsWith('src/')) continue;
      seen.add(`${functionName || '(anonymous)'}  ${place}:${lineNumber + 1}`);
    }
    for (const k of seen) inclusive.set(k, (inclusive.get(k) ?? 0) + n * usPerSample);
  }
  const rows = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(
        ([k, us]) =>
          `${((us / busyUs) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`,
      )
      .join('\n');
  console.log(`${file}`);
  console.log(
    `profiled ${(totalUs / 1e6).toFixed(1)} s, busy ${(busyUs / 1e6).toFixed(1)} s (${((busyUs / totalUs) * 100).toFixed(0)}%), ${samples} samples\n`,
  );
  console.log(`self time by file / package (share of busy time)\n${rows(byPlace)}\n`);
  console.log(`self time by function\n${rows(byFn)}\n`);
  console.log(`inclusive time of src/ functions (self + everything they call)\n${rows(inclusive)}`);
}

const target = positionals[0]!;
const file = fs.statSync(target).isDirectory() ? newestProfile(target) : target;
summarize(file, Number(values.top));
