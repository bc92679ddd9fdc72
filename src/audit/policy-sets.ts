import type { Logger } from '../observability/log.ts';
import { type PolicySetChange, policySetItem } from './policy-set-records.ts';
import type { AppendItem } from './store.ts';

export interface PolicySetRecordsOptions {
  readonly write: (item: AppendItem) => Promise<unknown>;
  readonly now: () => number;
  readonly newId: () => string;
  readonly log: Logger;
}

/**
 * The policy sets the gateway decided with, each recorded before any decision
 * record can name it: a decision's `policySetHash` always leads to the exact
 * rules in the log. A change is written at once, in order; a decision waits
 * for `settled()` and is denied if it rejects (the write is tried again by the
 * next decision, so a log that comes back catches up).
 */
export class PolicySetRecords {
  readonly #opts: PolicySetRecordsOptions;
  /** Changes not yet durable, oldest first, each with the time it happened. */
  readonly #unrecorded: { change: PolicySetChange; time: number; id: string }[] = [];
  #writing: Promise<void> | undefined;

  constructor(opts: PolicySetRecordsOptions) {
    this.#opts = opts;
  }

  note(change: PolicySetChange): void {
    this.#unrecorded.push({ change, time: this.#opts.now(), id: this.#opts.newId() });
    this.settled()?.catch((err) =>
      this.#opts.log.error('AUDIT: policy set not recorded yet; decisions are denied until it is', {
        policySetHash: change.live.hash,
        event: change.event,
        err: String(err),
      }),
    );
  }

  /** Nothing when every change is durable (the path of every call); else a promise that settles once they are. */
  settled(): Promise<void> | undefined {
    if (this.#unrecorded.length === 0) return undefined;
    this.#writing ??= this.#writeAll().finally(() => {
      this.#writing = undefined;
    });
    // Looked at again once it settles: a change noted just as a write ended is not covered by it.
    return this.#writing.then(() => this.settled());
  }

  async #writeAll(): Promise<void> {
    while (this.#unrecorded.length > 0) {
      const next = this.#unrecorded[0]!;
      await this.#opts.write(policySetItem(next.change, next.time, next.id));
      this.#unrecorded.shift();
    }
  }
}
