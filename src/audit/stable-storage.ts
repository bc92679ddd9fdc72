import { AuditError } from './errors.ts';
import { StableStorageFailed } from './store.ts';

export interface Durability {
  readonly mode: 'record' | 'overlap' | 'interval';
  readonly intervalMs: number;
}

interface StableWaiter {
  size: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * What of the committed log is on stable storage, and when the next flush
 * runs: one at a time, commits made meanwhile covered by one more after it.
 * In `record` mode nothing is flushed on a timer: a commit that asks for it
 * syncs as it commits (`committed(…, synced)`), and a decision record
 * committed without is flushed when its call is about to be forwarded
 * (`stable`). A failed flush is final: the kernel may have dropped the pages,
 * so nothing since is known kept.
 */
export class StableStorage {
  readonly durability: Durability;
  private readonly sync: () => Promise<void>;
  private readonly failed: (err: unknown) => void;
  /** Entries committed (the tree size after the last commit) and, of them, known on stable storage. */
  private committedSize = 0;
  private stableSize = 0;
  private syncing: Promise<void> | undefined;
  private syncAgain = false;
  /** What the flush in progress covers. */
  private syncTarget = 0;
  private waiters: StableWaiter[] = [];
  /** The flush due within `intervalMs` for the first commit not yet flushed (it keeps the process up until then). */
  private timer: NodeJS.Timeout | undefined;
  private broken: string | undefined;

  /** `sync` flushes the store; `failed` hears of the first flush that failed. */
  constructor(durability: Durability, sync: () => Promise<void>, failed: (err: unknown) => void) {
    this.durability = durability;
    this.sync = sync;
    this.failed = failed;
  }

  /**
   * A commit that brought the log to `size` (`synced`: and put it on stable
   * storage). Overlap: a decision record's flush
   * starts at once, so it runs while the call goes to its upstream; an
   * outcome's answer asks for its own (`stable`). Any other record (a lease, an
   * approval) is flushed within `intervalMs`, or sooner by one of those: one
   * flush per record would queue the outcome's behind it. Interval: everything
   * within `intervalMs`.
   */
  committed(size: number, hasDecision: boolean, synced = false): void {
    this.committedSize = Math.max(this.committedSize, size);
    if (synced && !this.broken) this.synced(size);
    const { mode, intervalMs } = this.durability;
    if (mode === 'record') return;
    if (mode === 'overlap' && hasDecision) this.requestSync();
    else this.syncWithin(intervalMs);
  }

  isStable(index: number): boolean {
    return index < this.stableSize;
  }

  /** Resolves once entry `index` (and every entry before it) is on stable storage; rejects if the flush failed. */
  stable(index: number): Promise<void> {
    if (this.isStable(index)) return Promise.resolve();
    if (this.broken) return Promise.reject(unavailable(this.broken));
    return new Promise((resolve, reject) => {
      this.waiters.push({ size: index + 1, resolve, reject });
      this.requestSync();
    });
  }

  /** Waits for the flush in progress (and the one it owes), then stops the timer: for closing. */
  async drain(): Promise<void> {
    this.stopTimer();
    while (this.syncing) await this.syncing;
  }

  stopTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private syncWithin(ms: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.requestSync();
    }, ms);
  }

  private requestSync(): void {
    if (this.syncing) {
      if (this.committedSize > this.syncTarget) this.syncAgain = true;
      return;
    }
    const target = this.committedSize;
    this.syncTarget = target;
    this.syncing = this.sync()
      .then(
        () => this.synced(target),
        (err) => this.syncFailed(err),
      )
      .finally(() => {
        this.syncing = undefined;
        if (this.syncAgain && !this.broken) {
          this.syncAgain = false;
          this.requestSync();
        }
      });
  }

  private synced(size: number): void {
    // After a failed fsync a later one proves nothing about the pages it lost.
    if (this.broken) return;
    this.stableSize = Math.max(this.stableSize, size);
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) {
      if (w.size <= this.stableSize) w.resolve();
      else this.waiters.push(w);
    }
  }

  /** A flush made elsewhere (a synced commit) failed: as final as one of ours. */
  fail(err: unknown): void {
    this.syncFailed(err);
  }

  /**
   * A failed fsync is final (the kernel may have dropped the pages); a store
   * that could not be asked (a database connection lost) denies the calls
   * waiting now, and the next flush tries again.
   */
  private syncFailed(err: unknown): void {
    if (err instanceof StableStorageFailed) {
      this.broken ??= `flush to stable storage failed: ${String(err)}`;
      this.failed(err);
    }
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) w.reject(unavailable(`audit flush failed: ${String(err)}`, err));
  }
}

const unavailable = (message: string, cause?: unknown): AuditError =>
  new AuditError('ERR_AUDIT_UNAVAILABLE', message, cause === undefined ? undefined : { cause });
