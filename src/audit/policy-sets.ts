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
  /** Records not yet durable, oldest first, with the set each names (for the log line). */
  readonly #unrecorded: { item: AppendItem; change: PolicySetChange }[] = [];
  #writing: Promise<void> | undefined;

  constructor(opts: PolicySetRecordsOptions) {
    this.#opts = opts;
  }

  /**
   * Made here, before the set goes live: a set whose record cannot even be
   * made throws (a reload is then refused; a start stops), and a retry only
   * writes again.
   */
  note(change: PolicySetChange): void {
    const item = policySetItem(change, this.#opts.now(), this.#opts.newId());
    this.#unrecorded.push({ item, change });
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
      await this.#opts.write(this.#unrecorded[0]!.item);
      this.#unrecorded.shift();
    }
  }
}
