import { spawnSync } from 'node:child_process';
import { accessSync, chmodSync, chownSync, constants, readdirSync, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { detectMemoryCgroup, type MemoryCgroupHost } from './memory-cgroup.ts';

/** The uid and gid a sandbox runs as when the gateway runs as root: root's files are then not its own. */
export const SANDBOX_UID_WHEN_ROOT = 65534;

/** What this machine offers for sandboxing, found once at start. */
export type SandboxHost =
  | {
      readonly available: true;
      readonly bwrap: string;
      readonly prlimit: string;
      /** coreutils' env: bwrap sets PWD, and the upstream gets only what its config names. */
      readonly env: string;
      /** Set when the gateway runs as root: drops to `SANDBOX_UID_WHEN_ROOT` before bwrap. */
      readonly setpriv?: string;
      /** Where each sandbox gets a memory cgroup; absent, the memory limit is RLIMIT_DATA. */
      readonly memory?: MemoryCgroupHost;
      /** The shell that joins a sandbox's cgroup before it runs bwrap. */
      readonly sh?: string;
    }
  | { readonly available: false; readonly reason: string };

/** The flags every sandbox uses, tried once with `true` so a missing kernel feature is found at start. */
const PROBE_ARGS = [
  '--unshare-user',
  '--unshare-ipc',
  '--unshare-pid',
  '--unshare-uts',
  '--unshare-cgroup-try',
  '--unshare-net',
  '--die-with-parent',
  '--ro-bind',
  '/',
  '/',
  '--dev',
  '/dev',
  '--proc',
  '/proc',
  '--tmpfs',
  '/tmp',
  'true',
];

function which(name: string, path: string): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

/**
 * Finds bubblewrap (and util-linux's prlimit, and setpriv when running as
 * root) on `path` and runs one empty sandbox: user namespaces may be disabled
 * even where bwrap is installed. A memory cgroup the gateway may make children
 * in is used for the memory limit where there is one (`cgroups: false` skips it).
 */
export function detectSandboxHost(
  opts: { path?: string; uid?: number; cgroups?: boolean } = {},
): SandboxHost {
  const path = opts.path ?? process.env.PATH ?? '';
  const root = (opts.uid ?? process.getuid?.() ?? -1) === 0;
  const bwrap = which('bwrap', path);
  if (!bwrap) return { available: false, reason: 'bubblewrap (bwrap) is not installed' };
  const prlimit = which('prlimit', path);
  if (!prlimit) return { available: false, reason: 'prlimit (util-linux) is not installed' };
  const env = which('env', path);
  if (!env) return { available: false, reason: 'env (coreutils) is not installed' };
  const setpriv = root ? which('setpriv', path) : undefined;
  if (root && !setpriv) return { available: false, reason: 'setpriv (util-linux) is not installed' };
  const command = setpriv ? [setpriv, ...dropToNobody(), bwrap, ...PROBE_ARGS] : [bwrap, ...PROBE_ARGS];
  const run = spawnSync(command[0]!, command.slice(1), { encoding: 'utf8', timeout: 10_000 });
  if (run.status !== 0) {
    const why = (run.stderr || run.error?.message || `exit ${run.status}`).trim().slice(0, 200);
    return { available: false, reason: `bubblewrap cannot create a sandbox here: ${why}` };
  }
  const sh = which('sh', path);
  // Only under a root gateway: the sandbox then runs as nobody and cannot write
  // its cgroup's files, which a non-root gateway's sandbox (same uid) could.
  const memory = opts.cgroups === false || !sh || !setpriv ? undefined : detectMemoryCgroup();
  return {
    available: true,
    bwrap,
    prlimit,
    env,
    ...(setpriv ? { setpriv } : {}),
    ...(memory && sh ? { memory, sh } : {}),
  };
}

/** setpriv's arguments to become the sandbox user, with no supplementary groups. */
export const dropToNobody = (): string[] => [
  `--reuid=${SANDBOX_UID_WHEN_ROOT}`,
  `--regid=${SANDBOX_UID_WHEN_ROOT}`,
  '--clear-groups',
  '--',
];

let detected: SandboxHost | undefined;

/** This process's sandbox host, probed on first use: the machine does not change under a running gateway. */
export function defaultSandboxHost(): SandboxHost {
  detected ??= detectSandboxHost();
  return detected;
}

/**
 * Makes a directory the gateway created writable inside a sandbox: under a
 * root gateway the sandbox runs as `SANDBOX_UID_WHEN_ROOT`, so it must own
 * it (and reach it through `parent`); otherwise it is the gateway's own already.
 */
export function handToSandbox(host: SandboxHost, dir: string, parent: string): void {
  if (!host.available || !host.setpriv) return;
  chmodSync(parent, statSync(parent).mode | 0o711);
  for (const entry of [dir, ...readdirSync(dir, { recursive: true }).map((p) => join(dir, String(p)))]) {
    chownSync(entry, SANDBOX_UID_WHEN_ROOT, SANDBOX_UID_WHEN_ROOT);
  }
}

/**
 * Whether the sandbox's user can pass every folder above `dir` (a folder the
 * gateway hands it with `handToSandbox`, so the folder itself is its own).
 */
export function dirReachableBySandbox(host: SandboxHost, dir: string): boolean {
  if (!host.available || !host.setpriv) return true;
  for (let up = dirname(dir); ; up = dirname(up)) {
    if ((statSync(up).mode & 0o001) === 0) return false;
    if (up === dirname(up)) return true;
  }
}

/**
 * Whether the sandbox's user can read `file` where it lies: under a root
 * gateway the sandbox runs as `SANDBOX_UID_WHEN_ROOT`, which cannot pass a
 * folder closed to others (a checkout in a `mktemp -d` folder, mode 0700).
 */
export function reachableBySandbox(host: SandboxHost, file: string): boolean {
  if (!host.available || !host.setpriv) return true;
  if ((statSync(file).mode & 0o004) === 0) return false;
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) return false;
    if (dir === dirname(dir)) return true;
  }
}
