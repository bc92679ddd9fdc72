import { Worker } from 'node:worker_threads';
import { AuditError } from './errors.ts';
import type {
  AppendItem,
  AuditStore,
  EntryQuery,
  StoredCheckpoint,
  StoredCosignature,
  StoredEntry,
  TreeHead,
} from './store.ts';

type Method = Exclude<keyof AuditStore, 'close'> | 'close';

export interface StoreCall {
  readonly id: number;
  readonly method: Method;
  readonly args: readonly unknown[];
}

export type StoreReply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly message: string };

interface Waiter {
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

const WORKER = new URL('./store-worker.ts', import.meta.url);

/**
 * The SQLite store run on a worker thread (store-worker.ts), behind the same
 * interface. Appends are acknowledged only after the worker's transaction
 * committed; if the worker dies, every waiting and later call fails, so the
 * gateway denies rather than forwarding unrecorded calls.
 */
export class ThreadedAuditStore implements AuditStore {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, Waiter>();
  private nextId = 0;
  private dead: string | undefined;

  private constructor(path: string) {
    this.worker = new Worker(WORKER, { workerData: { path } });
    this.worker.on('message', (reply: StoreReply) => this.settle(reply));
    this.worker.on('error', (err) => this.fail(`audit store thread failed: ${err.message}`));
    this.worker.on('exit', (code) => this.fail(`audit store thread exited (code ${code})`));
    // Held open only while a call waits on it: an idle store never keeps the process alive.
    this.worker.unref();
  }

  /** Starts the thread and waits until it has opened the database (or failed to). */
  static async open(path: string): Promise<ThreadedAuditStore> {
    const store = new ThreadedAuditStore(path);
    await store.head();
    return store;
  }

  append(items: readonly AppendItem[]): Promise<TreeHead & { first: number }> {
    return this.call('append', [items]).then((v) => reviveBuffers(v) as TreeHead & { first: number });
  }

  head(): Promise<TreeHead> {
    return this.call('head', []).then((v) => reviveBuffers(v) as TreeHead);
  }

  entries(from: number, to: number): Promise<StoredEntry[]> {
    return this.call('entries', [from, to]).then((v) => reviveBuffers(v) as StoredEntry[]);
  }

  addCheckpoint(checkpoint: StoredCheckpoint): Promise<void> {
    return this.call('addCheckpoint', [checkpoint]).then(() => undefined);
  }

  checkpoints(): Promise<StoredCheckpoint[]> {
    return this.call('checkpoints', []) as Promise<StoredCheckpoint[]>;
  }

  query(q: EntryQuery): Promise<StoredEntry[]> {
    return this.call('query', [q]).then((v) => reviveBuffers(v) as StoredEntry[]);
  }

  addCosignature(c: StoredCosignature): Promise<void> {
    return this.call('addCosignature', [c]).then(() => undefined);
  }

  cosignatures(size: number): Promise<StoredCosignature[]> {
    return this.call('cosignatures', [size]) as Promise<StoredCosignature[]>;
  }

  blob(hash: string): Promise<Buffer | undefined> {
    return this.call('blob', [hash]).then((v) => reviveBuffers(v) as Buffer | undefined);
  }

  async close(): Promise<void> {
    if (this.dead) return;
    await this.call('close', []);
    this.dead = 'audit store is closed';
    await this.worker.terminate();
  }

  private call(method: Method, args: readonly unknown[]): Promise<unknown> {
    if (this.dead) return Promise.reject(new AuditError('ERR_AUDIT_UNAVAILABLE', this.dead));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.waiting.size === 0) this.worker.ref();
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, method, args } satisfies StoreCall);
    });
  }

  private settle(reply: StoreReply): void {
    const waiter = this.waiting.get(reply.id);
    if (!waiter) return;
    this.waiting.delete(reply.id);
    if (this.waiting.size === 0) this.worker.unref();
    if (reply.ok) waiter.resolve(reply.value);
    else waiter.reject(new AuditError('ERR_AUDIT_UNAVAILABLE', reply.message));
  }

  private fail(reason: string): void {
    this.dead ??= reason;
    for (const waiter of this.waiting.values())
      waiter.reject(new AuditError('ERR_AUDIT_UNAVAILABLE', reason));
    this.waiting.clear();
  }
}

/** Structured clone turns Buffers into plain Uint8Arrays; the stores and their callers expect Buffers. */
export function reviveBuffers(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (Array.isArray(value)) return value.map(reviveBuffers);
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reviveBuffers(v)]));
  return value;
}
