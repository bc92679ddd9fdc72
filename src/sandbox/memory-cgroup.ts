import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * A memory cgroup the gateway may make children in: each sandboxed process
 * gets its own, limited to its `memoryMb` of memory actually used (RSS and
 * page cache). RLIMIT_DATA, the fallback, limits address space reserved
 * instead, which V8 13+ (Node 24 and later) overdraws at start: its CodeRange
 * reservation alone needs about 600 MB, so Node upstreams under a smaller
 * limit die before they run.
 */
export interface MemoryCgroupHost {
  readonly version: 1 | 2;
  /** The gateway's own cgroup in the memory hierarchy, where each sandbox's cgroup is made. */
  readonly parent: string;
}

interface CgroupFiles {
  readonly limit: string;
  /** Swap (v2) or memory+swap (v1): set equal so the limit cannot be escaped by swapping. */
  readonly swap: string;
  readonly swapValue: (bytes: number) => string;
}

const FILES: Record<1 | 2, CgroupFiles> = {
  1: {
    limit: 'memory.limit_in_bytes',
    swap: 'memory.memsw.limit_in_bytes',
    swapValue: (bytes) => String(bytes),
  },
  2: { limit: 'memory.max', swap: 'memory.swap.max', swapValue: () => '0' },
};

interface Mount {
  readonly root: string;
  readonly point: string;
  readonly fsType: string;
  readonly options: string;
}

function mounts(mountinfo: string): Mount[] {
  return mountinfo
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [left = '', right = ''] = line.split(' - ');
      const f = left.split(' ');
      const [fsType = '', , options = ''] = right.split(' ');
      return { root: f[3] ?? '', point: f[4] ?? '', fsType, options };
    });
}

/** Where a cgroup path of this process lies under a mount of its hierarchy. */
function underMount(mount: Mount, path: string): string | undefined {
  if (mount.root === '/') return join(mount.point, path);
  if (path === mount.root || path.startsWith(`${mount.root}/`))
    return join(mount.point, path.slice(mount.root.length));
  return undefined;
}

/** This process's memory cgroup directory, v1 or v2, from /proc's view of it. */
export function ownMemoryCgroup(procCgroup: string, mountinfo: string): MemoryCgroupHost | undefined {
  const all = mounts(mountinfo);
  for (const line of procCgroup.split('\n')) {
    const [, controllers = '', path = ''] = line.split(':');
    if (controllers.split(',').includes('memory')) {
      const mount = all.find((m) => m.fsType === 'cgroup' && m.options.split(',').includes('memory'));
      const dir = mount && underMount(mount, path);
      if (dir) return { version: 1, parent: dir };
    }
  }
  const unified = procCgroup.split('\n').find((l) => l.startsWith('0::'));
  const mount = all.find((m) => m.fsType === 'cgroup2');
  const dir = unified && mount && underMount(mount, unified.slice(3));
  // v2 lets a cgroup with processes delegate a controller only at the root:
  // memory must already be on for children.
  if (dir && readOr(join(dir, 'cgroup.subtree_control')).split(' ').includes('memory'))
    return { version: 2, parent: dir };
  return undefined;
}

function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Found once at start, and proved by making and removing one child with a limit set. */
export function detectMemoryCgroup(): MemoryCgroupHost | undefined {
  const found = ownMemoryCgroup(readOr('/proc/self/cgroup'), readOr('/proc/self/mountinfo'));
  if (!found) return undefined;
  try {
    accessSync(found.parent, constants.W_OK);
    removeOrphans(found.parent);
    const probe = new MemoryCgroups(found).create(64);
    probe.release();
    // Swap the cgroup does not account for would let a sandbox past its limit: RLIMIT_DATA then.
    if (!probe.swapBounded && swapOn()) return undefined;
    return probe.released() ? found : undefined;
  } catch {
    return undefined;
  }
}

const swapOn = (): boolean => readOr('/proc/swaps').split('\n').length > 1;

/** Empty cgroups a gateway that is gone left behind (its last sandboxes were still dying when it stopped). */
function removeOrphans(parent: string): void {
  for (const name of readdirSync(parent)) {
    const pid = /^portcullis-(\d+)-\d+$/.exec(name)?.[1];
    if (pid === undefined || alive(Number(pid))) continue;
    try {
      rmdirSync(join(parent, name));
    } catch {}
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let sequence = 0;

/** One sandboxed process's cgroup: joined by the process itself before it runs the upstream. */
export interface MemoryCgroup {
  /** The file a process writes its pid to, to join. */
  readonly procs: string;
  /** Removes the cgroup if its processes have exited. */
  release(): void;
  released(): boolean;
  /** Whether swap counts against the limit (it does where the kernel accounts for it). */
  readonly swapBounded: boolean;
  /** Kills what is left in it (its sandbox has exited) and removes it, waiting briefly for the kernel. */
  drain(): Promise<void>;
}

/** Makes per-process memory cgroups under the gateway's own. */
export class MemoryCgroups {
  private readonly host: MemoryCgroupHost;

  constructor(host: MemoryCgroupHost) {
    this.host = host;
  }

  create(memoryMb: number): MemoryCgroup {
    const dir = join(this.host.parent, `portcullis-${process.pid}-${++sequence}`);
    mkdirSync(dir);
    const files = FILES[this.host.version];
    const bytes = memoryMb * 1024 * 1024;
    // Absent where the kernel does not account for swap (detection then refuses the cgroup if swap is on).
    const swapBounded = existsSync(join(dir, files.swap));
    try {
      writeFileSync(join(dir, files.limit), String(bytes));
      if (swapBounded) writeFileSync(join(dir, files.swap), files.swapValue(bytes));
    } catch (e) {
      rmdirSync(dir);
      throw e;
    }
    let gone = false;
    const procs = join(dir, 'cgroup.procs');
    const release = (): void => {
      if (gone) return;
      try {
        rmdirSync(dir);
        gone = true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') gone = true;
      }
    };
    const drain = async (): Promise<void> => {
      // A sandbox's pid namespace is torn down by the kernel after its init
      // exits; this waits for that, bounded, at shutdown only.
      for (let i = 0; i < 200 && !gone; i++) {
        killAllIn(dir, procs);
        release();
        if (!gone) await delay(10);
      }
    };
    return { procs, release, released: () => gone, drain, swapBounded };
  }
}

/**
 * v2 kills the whole cgroup at once (`cgroup.kill`); v1 kills pid by pid, each
 * checked to be in the cgroup still, so a pid reused meanwhile is not killed.
 */
function killAllIn(dir: string, procs: string): void {
  if (existsSync(join(dir, 'cgroup.kill'))) {
    try {
      writeFileSync(join(dir, 'cgroup.kill'), '1');
    } catch {}
    return;
  }
  const name = `/${basename(dir)}`;
  for (const pid of readOr(procs).split('\n').filter(Boolean)) {
    if (
      !readOr(`/proc/${pid}/cgroup`)
        .split('\n')
        .some((line) => line.endsWith(name))
    )
      continue;
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {}
  }
}
