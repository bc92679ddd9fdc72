/** Child processes: all spawned in their own process group, all killed on exit. */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT, SETTINGS } from './settings.ts';

/** A child of the bench, named, with the last few KB of its stderr. */
export type BenchProcess = ChildProcess & { benchName: string; stderrTail: string };

export const children = new Set<BenchProcess>();
/** Descendants seen (e.g. stdio upstreams a proxy spawned in their own group). */
export const descendantPids = new Set<number>();
let tmpDir: string | undefined;

let stopping = false;

export interface LaunchOptions {
  stdin?: 'ignore' | 'pipe';
}
/** Starts a child; `launch` itself, or a wrapper that starts it under a tool (valgrind). */
export type Launch = (name: string, command: string, args: string[], opts?: LaunchOptions) => BenchProcess;

export function launch(
  name: string,
  command: string,
  args: string[],
  { stdin = 'ignore' }: LaunchOptions = {},
): BenchProcess {
  if (stopping) throw new Error('bench is stopping');
  const proc = spawn(command, args, {
    cwd: ROOT,
    stdio: [stdin, 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, NODE_OPTIONS: '' },
  }) as BenchProcess;
  proc.benchName = name;
  proc.stderrTail = '';
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (d: string) => {
    proc.stderrTail = (proc.stderrTail + d).slice(-4000);
  });
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  proc.on('error', (err) => {
    proc.stderrTail += `\nspawn error: ${err.message}`;
  });
  proc.stdin?.on('error', () => {}); // EPIPE once it is gone; its exit is what counts
  return proc;
}

export function signalGroup(proc: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-proc.pid!, signal);
  } catch {
    try {
      proc.kill(signal);
    } catch {}
  }
}

export function isEchoServer(pid: number): boolean {
  try {
    // An argument of its own (a `sh -c "node echo-server.ts"` wrapper is not the server).
    return fs
      .readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .some((a) => a.endsWith('echo-server.ts'));
  } catch {
    return false;
  }
}

/** SIGKILLs echo servers a proxy left behind (only those: a pid may have been reused). */
export function killStrays(pids: Iterable<number> = descendantPids): void {
  for (const pid of [...pids]) {
    try {
      if (isEchoServer(pid)) process.kill(pid, 'SIGKILL');
    } catch {}
    descendantPids.delete(pid);
  }
}

/** SIGTERM every child group, give them a moment, then SIGKILL what is left. */
export async function stopAll(graceMs = 3000): Promise<void> {
  const procs = [...children];
  for (const p of procs) signalGroup(p, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (children.size > 0 && Date.now() < deadline) await sleep(50);
  for (const p of children) signalGroup(p, 'SIGKILL');
  await sleep(100);
  killStrays();
}

export async function stopProc(proc: ChildProcess, graceMs = 3000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  signalGroup(proc, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(proc, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** On exit or a signal: every child group killed, strays too, and the run's temp dir removed. */
export function installExitHandlers(): void {
  process.on('exit', () => {
    for (const p of children) signalGroup(p, 'SIGKILL');
    killStrays();
    if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      stopping = true;
      process.stderr.write(`\nbench: ${sig}, stopping children\n`);
      stopAll(1000).finally(() => process.exit(130));
    });
  }
}

/** The `listening` line a server of the bench prints on stdout. */
export interface Listening {
  event: 'listening';
  url: string;
  adminUrl?: string;
}

/** Resolves with the first `{"event":"listening","url":…}` line on the child's stdout (`adminUrl` too, for the gateway). */
export function waitForListening(proc: ChildProcess): Promise<Listening> {
  const stdout = proc.stdout!;
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => fail(new Error('no "listening" line in time')), SETTINGS.startTimeoutMs);
    const onData = (d: string) => {
      buf += d;
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const msg = JSON.parse(line);
          if (msg?.event === 'listening' && typeof msg.url === 'string') return done(msg);
        } catch {}
        nl = buf.indexOf('\n');
      }
    };
    const onExit = (code: number | null, signal: string | null) =>
      fail(new Error(`exited (${code ?? signal}) before listening`));
    function cleanup() {
      clearTimeout(timer);
      stdout.off('data', onData);
      proc.off('exit', onExit);
      stdout.resume(); // keep draining whatever it prints later
    }
    function done(msg: Listening) {
      cleanup();
      resolve(msg);
    }
    function fail(err: Error) {
      cleanup();
      reject(err);
    }
    stdout.setEncoding('utf8');
    stdout.on('data', onData);
    proc.once('exit', onExit);
  });
}

/** Polls until something answers HTTP on the port (peers print no machine-readable line). */
export async function waitForHttp(proc: ChildProcess, port: number): Promise<void> {
  proc.stdout!.resume();
  const deadline = Date.now() + SETTINGS.startTimeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`exited (${proc.exitCode ?? proc.signalCode}) before listening`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/mcp', timeout: 500 }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => req.destroy());
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listening on port ${port} in time`);
}

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as net.AddressInfo;
  srv.close();
  await once(srv, 'close');
  return port;
}

/** The temp dir of this run (configs, key files, SQLite audit stores), created on first use. */
export function runDir(): string {
  tmpDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-bench-'));
  return tmpDir;
}
