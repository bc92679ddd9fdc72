/**
 * In-process wake-ups for calls waiting on an approval: a decision made in this
 * process wakes its waiters at once; one made elsewhere (another replica, the
 * CLI) is seen at the next poll of the state store.
 */
export class Wakeups {
  private readonly waiting = new Map<string, Set<() => void>>();

  /** Resolves on `wake(id)`, after `ms`, or when `signal` aborts, whichever is first. */
  next(id: string, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const set = this.waiting.get(id) ?? new Set();
      this.waiting.set(id, set);
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        set.delete(done);
        if (set.size === 0 && this.waiting.get(id) === set) this.waiting.delete(id);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal.addEventListener('abort', done, { once: true });
      set.add(done);
    });
  }

  wake(id: string): void {
    for (const done of [...(this.waiting.get(id) ?? [])]) done();
  }

  get size(): number {
    return this.waiting.size;
  }
}

/** How many calls wait at once, per principal and in all: a wait holds a request open, so it is bounded. */
export class HeldCalls {
  private readonly perPrincipal = new Map<string, number>();
  private total = 0;
  private readonly caps: { readonly perPrincipal: number; readonly total: number };

  constructor(caps: { perPrincipal: number; total: number }) {
    this.caps = caps;
  }

  /** Counts one more waiting call, or returns false when a cap is reached. */
  admit(principal: string): boolean {
    const mine = this.perPrincipal.get(principal) ?? 0;
    if (mine >= this.caps.perPrincipal || this.total >= this.caps.total) return false;
    this.perPrincipal.set(principal, mine + 1);
    this.total++;
    return true;
  }

  release(principal: string): void {
    const mine = (this.perPrincipal.get(principal) ?? 1) - 1;
    if (mine <= 0) this.perPrincipal.delete(principal);
    else this.perPrincipal.set(principal, mine);
    this.total = Math.max(0, this.total - 1);
  }

  get held(): number {
    return this.total;
  }
}
