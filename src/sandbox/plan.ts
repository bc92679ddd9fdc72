import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { ConfigError } from '../errors.ts';
import type { SandboxConfig } from './config.ts';
import { dropToNobody, type SandboxHost } from './host.ts';

/** Where the egress proxy's socket appears inside the sandbox, and the port its bridge listens on there. */
export const EGRESS_SOCKET = '/run/portcullis/egress.sock';
export const EGRESS_PORT = 3128;

/** Private in every sandbox: an empty tmpfs (so no unix socket of the host, such as PostgreSQL's, is reachable). */
const PRIVATE_DIRS = ['/tmp', '/run', '/var/tmp', '/dev/shm'];

export interface SandboxRequest {
  readonly host: Extract<SandboxHost, { available: true }>;
  readonly config: SandboxConfig;
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string;
  /** PATH the command is looked up on (the child's). */
  readonly path: string;
  /** Absolute paths that must not be visible: the gateway's state, other upstreams' files. */
  readonly hidden: readonly string[];
  /** Allowlist mode: the host path of the egress proxy's socket and the in-sandbox bridge to it. */
  readonly egress?: { readonly socket: string; readonly bridge: string; readonly node: string };
  /** The `cgroup.procs` of this process's memory cgroup: joined first, and then no RLIMIT_DATA. */
  readonly memoryCgroup?: string;
}

export interface SandboxedCommand {
  readonly command: string;
  readonly args: string[];
  /** Added to the child's environment (the proxy variables in allowlist mode). */
  readonly env: Record<string, string>;
}

/** bwrap's argument list for one upstream: read-only root, private /tmp, the gateway's state hidden, its limits. */
export function sandboxedCommand(req: SandboxRequest): SandboxedCommand {
  const { host, config } = req;
  const command = resolveCommand(req.command, req.path, req.cwd);
  const writable = config.writable.map((p) => existingDir(resolve(req.cwd, p)));
  const hidden = [...new Set(req.hidden.map((p) => resolve(p)))].sort(byDepth);
  const covered = [...hidden, ...PRIVATE_DIRS];
  const exposed = [command, ...req.args, ...(req.egress ? [req.egress.bridge, req.egress.node] : [])]
    .map((a) => existingPath(a, req.cwd))
    .filter((p): p is string => p !== undefined && covered.some((h) => within(p, h)))
    .map(exposureRoot);
  const shown = [...new Set([...exposed, ...writable])];
  const cgroup =
    req.memoryCgroup !== undefined && host.sh ? { procs: req.memoryCgroup, sh: host.sh } : undefined;
  const bwrap = [
    ...namespaces(config),
    ...['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc'],
    ...PRIVATE_DIRS.filter(isDir).flatMap((d) => ['--tmpfs', d]),
    ...hidden.flatMap(hide),
    ...[...new Set(exposed)].flatMap((p) => ['--ro-bind', p, p]),
    ...writable.flatMap((p) => ['--bind', p, p]),
    // What is hidden stays hidden inside whatever was shown again above it.
    ...hidden.filter((h) => shown.some((s) => h !== s && within(h, s))).flatMap(hide),
    ...(req.egress ? ['--bind', req.egress.socket, EGRESS_SOCKET] : []),
    '--chdir',
    visibleInside(req.cwd, covered, shown) ? req.cwd : '/',
    '--',
    host.prlimit,
    ...limitArgs(config, !cgroup),
    '--',
    // bwrap sets PWD; the upstream gets exactly the variables its config names.
    ...[host.env, '-u', 'PWD'],
    ...(req.egress ? [req.egress.node, req.egress.bridge, String(EGRESS_PORT), EGRESS_SOCKET, '--'] : []),
    command,
    ...req.args,
  ];
  const argv = host.setpriv
    ? [host.setpriv, ...dropToNobody(), host.bwrap, ...bwrap]
    : [host.bwrap, ...bwrap];
  const env = req.egress ? proxyEnv() : {};
  if (!cgroup) return { command: argv[0]!, args: argv.slice(1), env };
  // The shell moves itself into the cgroup and then becomes the sandbox, so
  // nothing of the upstream runs outside it, not even for an instant.
  return { command: cgroup.sh, args: ['-c', JOIN_CGROUP, cgroup.procs, ...argv], env };
}

function namespaces(config: SandboxConfig): string[] {
  const ns = ['--unshare-user', '--unshare-ipc', '--unshare-pid', '--unshare-uts', '--unshare-cgroup-try'];
  if (config.network !== 'host') ns.push('--unshare-net');
  // Dies with the gateway; its own session, so it cannot push input into a terminal it shares.
  return [...ns, '--die-with-parent', '--new-session'];
}

const JOIN_CGROUP = 'echo $$ > "$0" && exec "$@"';

function limitArgs(config: SandboxConfig, dataLimit: boolean): string[] {
  const l = config.limits;
  return [
    ...(dataLimit ? [`--data=${l.memoryMb * 1024 * 1024}`] : []),
    `--nproc=${l.processes}`,
    `--nofile=${l.openFiles}`,
    `--cpu=${l.cpuSeconds}`,
    '--core=0',
  ];
}

/** Every proxy variable names the in-sandbox bridge; node honours them with NODE_USE_ENV_PROXY. */
function proxyEnv(): Record<string, string> {
  const url = `http://127.0.0.1:${EGRESS_PORT}`;
  return {
    HTTP_PROXY: url,
    HTTPS_PROXY: url,
    http_proxy: url,
    https_proxy: url,
    ALL_PROXY: url,
    NO_PROXY: '',
    no_proxy: '',
    NODE_USE_ENV_PROXY: '1',
  };
}

const hide = (p: string): string[] => {
  const st = statOrUndefined(p);
  if (!st) return [];
  return st.isDirectory() ? ['--tmpfs', p] : ['--ro-bind', '/dev/null', p];
};

/** The whole `node_modules` tree a file is in (its package needs its dependencies), else its directory. */
function exposureRoot(path: string): string {
  const parts = path.split(sep);
  const at = parts.lastIndexOf('node_modules');
  if (at > 0) return parts.slice(0, at + 1).join(sep);
  return statOrUndefined(path)?.isDirectory() ? path : dirname(path);
}

function resolveCommand(command: string, path: string, cwd: string): string {
  if (command.includes('/')) return resolve(cwd, command);
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return command;
}

function existingPath(arg: string, cwd: string): string | undefined {
  if (!arg || arg.startsWith('-')) return undefined;
  const p = isAbsolute(arg) ? arg : resolve(cwd, arg);
  return statOrUndefined(p) ? p : undefined;
}

function existingDir(p: string): string {
  if (!isDir(p)) {
    throw new ConfigError(`sandbox.writable: ${p} is not an existing directory`, [
      { path: 'sandbox.writable', message: `${p} must be an existing directory` },
    ]);
  }
  return p;
}

/** Whether `p` exists inside the sandbox as outside: not under anything hidden, or shown again. */
const visibleInside = (p: string, covered: readonly string[], shown: readonly string[]): boolean =>
  isDir(p) && (!covered.some((h) => within(p, h)) || shown.some((s) => within(p, s)));

const within = (p: string, dir: string): boolean =>
  p === dir || p.startsWith(dir.endsWith(sep) ? dir : dir + sep);
const byDepth = (a: string, b: string): number =>
  a.split(sep).length - b.split(sep).length || a.localeCompare(b);
const isDir = (p: string): boolean => statOrUndefined(p)?.isDirectory() ?? false;

function statOrUndefined(p: string) {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
}
