/** Measurement: CPU time and memory of processes from /proc, and one measured round. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { drive } from './load.ts';
import { SETTINGS } from './settings.ts';
import { scrapeStages, stageDelta } from './stages.ts';
import type { LiveTarget, Round } from './types.ts';

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime+stime in ms and the parent pid, or null when the process is gone. */
export function procStat(pid: number): { ppid: number; cpuMs: number; sysMs: number } | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    const sysMs = (Number(f[12]) * 1000) / CLK_TCK;
    return { ppid: Number(f[1]), cpuMs: (Number(f[11]) * 1000) / CLK_TCK + sysMs, sysMs };
  } catch {
    return null;
  }
}

export const cpuMs = (pids: number[]): number =>
  pids.reduce((sum, pid) => sum + (procStat(pid)?.cpuMs ?? 0), 0);

/** A `Vm*` line of /proc/PID/status in MB (VmHWM: peak RSS, VmRSS: current). */
export function vmMB(pid: number, key: 'VmHWM' | 'VmRSS'): number | null {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** How many file descriptors a process has open, or null when it is gone. */
export function openFds(pid: number): number | null {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/** Every live descendant of `root` (a proxy's stdio upstreams, whatever group they run in). */
export function descendants(root: number): number[] {
  const kids = new Map<number, number[]>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = procStat(Number(name));
    if (!st) continue;
    const arr = kids.get(st.ppid);
    if (arr) arr.push(Number(name));
    else kids.set(st.ppid, [Number(name)]);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const k of kids.get(queue.shift()!) ?? []) {
      out.push(k);
      queue.push(k);
    }
  }
  return out;
}

/** One measured round: c callers for `seconds`, CPU read from /proc before and after. */
export async function measureRound(t: LiveTarget, c: number): Promise<Round> {
  // Scraped outside the CPU window, so the scrape's own cost is not charged to the calls.
  const stages0 = t.running.adminUrl ? await scrapeStages(t.running.adminUrl).catch(() => null) : null;
  const proxyPid = t.running.proxy?.pid;
  const upstream = t.running.upstreamPids();
  const cpu0 = {
    proxy: proxyPid ? cpuMs([proxyPid]) : 0,
    proxySys: proxyPid ? (procStat(proxyPid)?.sysMs ?? 0) : 0,
    upstream: cpuMs(upstream),
    client: process.cpuUsage(),
  };
  const r = await drive(t.sessions, c, SETTINGS.seconds);
  const client = process.cpuUsage(cpu0.client);
  const cpu = {
    proxyCpuMs: proxyPid ? cpuMs([proxyPid]) - cpu0.proxy : null,
    proxySysCpuMs: proxyPid ? (procStat(proxyPid)?.sysMs ?? 0) - cpu0.proxySys : null,
    upstreamCpuMs: cpuMs(upstream) - cpu0.upstream,
    clientCpuMs: (client.user + client.system) / 1000,
  };
  const stages1 =
    stages0 && t.running.adminUrl ? await scrapeStages(t.running.adminUrl).catch(() => null) : null;
  const stages = stages0 && stages1 ? stageDelta(stages0, stages1) : null;
  return { ...r, ...cpu, stages };
}
