import { createHash } from 'node:crypto';
import { type FSWatcher, readFileSync, realpathSync, watch } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../../observability/log.ts';

export interface PolicyFileWatcherOptions {
  /** Absolute paths as configured (a symlink stays a symlink: its target may be swapped). */
  readonly files: readonly string[];
  /** Called (debounced) when what the files read as has changed. */
  readonly onChange: () => void;
  readonly log: Logger;
  readonly debounceMs?: number;
}

/**
 * Watches the directories that hold the policy files, not the files' inodes:
 * an editor's atomic save (write a temp file, rename it over) and a Kubernetes
 * ConfigMap update (the `..data` symlink swapped to a new directory) replace
 * the inode, and a watch on the old one would never fire again. Both the
 * directory of the configured path and that of its current symlink target are
 * watched, re-resolved on every change. Events only prompt a look: a change
 * is what the files read as, so unrelated files in the same folder reload nothing.
 */
export class PolicyFileWatcher {
  private readonly opts: PolicyFileWatcherOptions;
  private readonly watchers = new Map<string, FSWatcher>();
  private fingerprint = '';
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(opts: PolicyFileWatcherOptions) {
    this.opts = opts;
  }

  start(): void {
    this.fingerprint = this.read();
    this.rewatch();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  private poke(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.check(), this.opts.debounceMs ?? 100);
    this.timer.unref();
  }

  private check(): void {
    if (this.closed) return;
    this.rewatch();
    const now = this.read();
    if (now === this.fingerprint) return;
    this.fingerprint = now;
    this.opts.onChange();
  }

  /** Watches every directory a file lives in now, through its symlinks; drops the ones no longer needed. */
  private rewatch(): void {
    const dirs = new Set<string>();
    for (const file of this.opts.files) {
      dirs.add(dirname(file));
      const real = realpathOrUndefined(file);
      if (real) dirs.add(dirname(real));
    }
    for (const [dir, w] of this.watchers) {
      if (dirs.has(dir)) continue;
      w.close();
      this.watchers.delete(dir);
    }
    for (const dir of dirs) if (!this.watchers.has(dir)) this.watchDir(dir);
  }

  private watchDir(dir: string): void {
    try {
      const w = watch(dir, () => this.poke());
      w.on('error', (err) => {
        this.opts.log.error('policy watch failed on a directory; watching again on the next change', {
          dir,
          err: String(err),
        });
        w.close();
        this.watchers.delete(dir);
        this.poke();
      });
      w.unref();
      this.watchers.set(dir, w);
    } catch (err) {
      this.opts.log.error('cannot watch a policy directory; changes in it will not reload', {
        dir,
        err: String(err),
      });
    }
  }

  /** What the files read as now (a missing file reads as missing, so its return is a change too). */
  private read(): string {
    const hash = createHash('sha256');
    for (const file of this.opts.files) {
      hash.update(`${file}\0`);
      try {
        hash.update(readFileSync(file)).update('\0ok\0');
      } catch (err) {
        hash.update(`\0missing:${(err as NodeJS.ErrnoException).code ?? 'error'}\0`);
      }
    }
    return hash.digest('hex');
  }
}

function realpathOrUndefined(file: string): string | undefined {
  try {
    return realpathSync(file);
  } catch {
    return undefined;
  }
}
