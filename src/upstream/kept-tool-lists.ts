import { deepFreeze } from '../freeze.ts';
import { isObject, type JsonObject } from '../jsonrpc.ts';

/** Answers kept per connection: one per distinct request (caller profile, log level); past it the oldest goes. */
const MAX_KEPT = 16;

interface Kept {
  readonly at: number;
  /** The fetch's number: of two answers, the one fetched later is kept, whatever the clock says. */
  readonly seq: number;
  readonly epoch: number;
  readonly items: readonly JsonObject[];
}

/** When a fetch of the list was started: what a kept answer is dated by. */
export interface ListFetch {
  readonly key: string;
  readonly at: number;
  readonly seq: number;
  readonly epoch: number;
}

/**
 * One upstream connection's complete tools/list answers, kept (deep-frozen) for
 * `maxAgeMs` by what the upstream was asked (its params, a progress token
 * aside). `epoch` counts the upstream's `notifications/tools/list_changed`: an
 * answer asked for before a change is never kept or used after it, even when
 * its fetch ends after a newer one.
 */
export class KeptToolLists {
  private readonly kept = new Map<string, Kept>();
  private fetches = 0;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(maxAgeMs: number, now: () => number) {
    this.maxAgeMs = maxAgeMs;
    this.now = now;
  }

  /** The answer kept for this request while it may stand for a new one. */
  get(params: JsonObject | undefined, epoch: number): readonly JsonObject[] | undefined {
    const kept = this.kept.get(keyOf(params));
    if (!kept || kept.epoch !== epoch) return undefined;
    const age = this.now() - kept.at;
    return age >= 0 && age < this.maxAgeMs ? kept.items : undefined;
  }

  /** Dates a fetch about to start. */
  begin(params: JsonObject | undefined, epoch: number): ListFetch {
    return { key: keyOf(params), at: this.now(), seq: ++this.fetches, epoch };
  }

  /**
   * Keeps a complete answer unless a change was announced since its fetch began
   * or an answer fetched later is kept already; an incomplete one drops what was kept.
   */
  settle(fetch: ListFetch, epoch: number, items: JsonObject[], complete: boolean): void {
    const kept = this.kept.get(fetch.key);
    if (!complete || this.maxAgeMs === 0 || fetch.epoch !== epoch) {
      if (kept && kept.seq < fetch.seq) this.kept.delete(fetch.key);
      return;
    }
    if (kept && kept.epoch === epoch && kept.seq > fetch.seq) return;
    this.kept.delete(fetch.key);
    if (this.kept.size >= MAX_KEPT) this.kept.delete(this.kept.keys().next().value!);
    this.kept.set(fetch.key, { at: fetch.at, seq: fetch.seq, epoch, items: deepFreeze(items) });
  }
}

/** What names a request: its params as sent, without the progress token (a new one on every request). */
function keyOf(params: JsonObject | undefined): string {
  if (!params) return '';
  const { _meta: meta, ...rest } = params;
  let named: JsonObject = rest;
  if (isObject(meta)) {
    const { progressToken: _, ...otherMeta } = meta;
    if (Object.keys(otherMeta).length > 0) named = { ...rest, _meta: otherMeta };
  } else if (meta !== undefined) named = params;
  return Object.keys(named).length > 0 ? JSON.stringify(named) : '';
}
