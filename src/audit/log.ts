import type { Logger } from '../observability/log.ts';
import { type Checkpoint, checkpointText, openCheckpoint, signCheckpoint } from './checkpoint.ts';
import { AuditError } from './errors.ts';
import { CompactRange, consistencyProof, leafHash } from './merkle.ts';
import type { Signer } from './note.ts';
import { type Durability, StableStorage } from './stable-storage.ts';
import { type AppendItem, type AuditStore, decodeRange, encodeRange, StableStorageFailed } from './store.ts';
import { addCheckpoint, parseWitnessKey, type WitnessConfig } from './witness.ts';

export interface AuditLogOptions {
  readonly signer: Signer;
  readonly origin: string;
  readonly checkpointEveryEntries: number;
  readonly checkpointEveryMs: number;
  readonly groupCommit: boolean;
  readonly maxBatch: number;
  readonly log: Logger;
  /** c2sp.org/tlog-witness endpoints each new checkpoint is pushed to. */
  readonly witnesses?: readonly WitnessConfig[];
  /**
   * When records reach stable storage (the config's `audit.durability`).
   * Omitted: `record`, the strictest. The store is best opened `deferred`: the
   * log asks for the syncs its mode needs (a store opened `each` syncs every
   * commit, which is stricter and slower).
   */
  readonly durability?: Durability;
}

export type { Durability } from './stable-storage.ts';

interface Pending {
  item: AppendItem;
  /** In `record` mode: the commit must put it on stable storage (false: `stable()` or a later durable commit will). */
  durable: boolean;
  resolve: (index: number) => void;
  reject: (err: unknown) => void;
}

/**
 * The writer side of the log: batches appends into one transaction each (group
 * commit), acknowledges each only once its transaction committed, and signs a
 * checkpoint every N entries or T ms after checking it extends the last one.
 */
export class AuditLog {
  readonly store: AuditStore;
  readonly opts: AuditLogOptions;
  private pending: Pending[] = [];
  private flushing = false;
  private signed: CompactRange | undefined;
  private checkpointing: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  /** A size-triggered checkpoint is queued: don't queue one per batch meanwhile. */
  private due = false;
  /** Leaf hashes of the signed tree, kept only to prove consistency to witnesses. */
  private leaves: Buffer[] | undefined;
  private readonly witnessSizes = new Map<string, number>();
  /** Set when the stored log stopped extending the last signed checkpoint. */
  /** Why the log refuses every append until restarted, once it does. */
  get broken(): string | undefined {
    return this.#broken;
  }
  #broken: string | undefined;

  private brokenError(): AuditError {
    return new AuditError('ERR_AUDIT_UNAVAILABLE', `audit log is broken: ${this.#broken}`);
  }
  private readonly storage: StableStorage;

  constructor(store: AuditStore, opts: AuditLogOptions) {
    this.store = store;
    this.opts = opts;
    this.storage = new StableStorage(
      opts.durability ?? { mode: 'record', intervalMs: 0 },
      () => store.sync(),
      (err) => this.syncFailed(err),
    );
    this.timer = setInterval(() => void this.checkpoint().catch(() => {}), opts.checkpointEveryMs);
    this.timer.unref();
  }

  get durability(): Durability {
    return this.storage.durability;
  }

  /** Whether an answer waits for its call's records to reach stable storage (`stable`) before it is released. */
  get holdsAnswers(): boolean {
    return this.durability.mode === 'overlap';
  }

  /**
   * Checks the stored log against this writer's key and origin before it may
   * append: the last checkpoint must verify, its stored range must have its
   * root, and the stored head must extend it.
   */
  async init(): Promise<void> {
    this.signed = await this.loadSigned();
    // Only the entries since the checkpoint are read: start-up does not grow with the log.
    await this.extendSigned(this.signed);
  }

  /**
   * Resolves with the entry's index once it is durable (in `record` mode: on
   * stable storage); rejects if it is not.
   */
  append(item: AppendItem): Promise<number> {
    return this.enqueue(item, true);
  }

  /**
   * Resolves with the entry's index once it is committed (a crash of the
   * gateway process cannot lose it), in every mode. For a record whose step
   * comes later: a decision record, which reaches stable storage before its
   * call is forwarded (`beforeForward`), usually in the commit of the call's
   * lease record on the way, so one fsync serves both.
   */
  appendCommitted(item: AppendItem): Promise<number> {
    return this.enqueue(item, false);
  }

  /**
   * What forwarding the call whose decision record is `index` waits for:
   * in `record` mode that record on stable storage (nothing, when a durable
   * commit since has taken it there); in the others nothing, it is committed.
   */
  beforeForward(index: number): Promise<void> | undefined {
    if (this.durability.mode !== 'record' || this.storage.isStable(index)) return undefined;
    return this.stable(index);
  }

  /**
   * Rejects when an append would fail now (the readiness probe): the log is
   * closed or broken, its file is gone, or its store does not answer a read.
   */
  async probe(): Promise<void> {
    if (this.closed) throw new AuditError('ERR_AUDIT_UNAVAILABLE', 'audit log is closed');
    try {
      this.store.assertSameFile?.();
    } catch (err) {
      if (err instanceof AuditError && err.code === 'ERR_AUDIT_STORE_LOST') this.lost(err);
      throw err;
    }
    if (this.broken) throw this.brokenError();
    await this.store.head();
  }

  /** Whether entry `index` (and every entry before it) is known on stable storage. */
  isStable(index: number): boolean {
    return this.storage.isStable(index);
  }

  private enqueue(item: AppendItem, durable: boolean): Promise<number> {
    if (this.closed) return Promise.reject(new AuditError('ERR_AUDIT_UNAVAILABLE', 'audit log is closed'));
    if (this.broken) return Promise.reject(this.brokenError());
    return new Promise((resolve, reject) => {
      this.pending.push({ item, durable, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        // Let the calls arriving in this turn of the event loop join the batch.
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const max = this.opts.groupCommit ? this.opts.maxBatch : 1;
      const batch = this.pending.splice(0, max);
      if (this.broken) {
        // Queued before the log broke (a failed fsync, a lost file): nothing more is committed or acknowledged.
        const err = this.brokenError();
        for (const p of batch) p.reject(err);
        continue;
      }
      try {
        // Record mode: one fsync in the commit covers the batch and every commit before it.
        const sync = this.durability.mode === 'record' && batch.some((p) => p.durable);
        const head = await this.store.append(
          batch.map((p) => p.item),
          { sync },
        );
        this.storage.committed(
          head.size,
          batch.some((p) => p.item.meta.kind === 'decision'),
          sync,
        );
        for (const [i, p] of batch.entries()) p.resolve(head.first + i);
        const last = this.signed?.size ?? 0;
        if (head.size - last >= this.opts.checkpointEveryEntries && !this.due) {
          this.due = true;
          void this.checkpoint()
            .catch(() => {})
            .finally(() => {
              this.due = false;
            });
        }
      } catch (err) {
        this.opts.log.error('audit append failed', { err: String(err), entries: batch.length });
        if (err instanceof AuditError && err.code === 'ERR_AUDIT_STORE_LOST') this.lost(err);
        if (err instanceof StableStorageFailed) this.storage.fail(err);
        for (const p of batch)
          p.reject(
            new AuditError('ERR_AUDIT_UNAVAILABLE', `audit append failed: ${String(err)}`, { cause: err }),
          );
      }
    }
    this.flushing = false;
  }

  /**
   * Resolves once entry `index` (and every entry before it) is on stable
   * storage; rejects if the flush failed. In `record` mode every entry
   * `append` acknowledged already is.
   */
  stable(index: number): Promise<void> {
    if (this.broken && !this.storage.isStable(index)) return Promise.reject(this.brokenError());
    return this.storage.stable(index);
  }

  /** After a failed fsync the kernel may have dropped the pages: nothing since is known kept, so nothing more is accepted. */
  private syncFailed(err: unknown): void {
    this.#broken ??= `flush to stable storage failed: ${String(err)}`;
    this.opts.log.error('AUDIT FLUSH FAILED: refusing further appends until restarted', { err: String(err) });
  }

  /** The file behind the store is gone: nothing written from now on would be kept, so nothing is accepted. */
  private lost(err: AuditError): void {
    if (this.broken) return;
    this.#broken = err.message;
    this.opts.log.error('AUDIT LOG FILE DELETED OR REPLACED: refusing further appends until restarted', {
      reason: err.message,
      ...err.detail,
    });
  }

  /** Signs and stores a checkpoint of the current head if the tree grew; returns the latest checkpoint note. */
  checkpoint(): Promise<void> {
    const run = this.checkpointing.then(() => this.checkpointNow());
    this.checkpointing = run.catch((err) => {
      this.opts.log.error('audit checkpoint failed', { err: String(err) });
    });
    return run;
  }

  private async checkpointNow(): Promise<void> {
    const signed = this.signed ?? (await this.loadSigned());
    const grown = await this.extendSigned(signed);
    if (!grown) return;
    const { next, added } = grown;
    // Nothing is signed (and shown to witnesses) that a power loss could still take back.
    await this.store.sync().catch((err) => {
      if (err instanceof StableStorageFailed) this.storage.fail(err);
      throw err;
    });
    if (this.broken) throw this.brokenError();
    const c: Checkpoint = { origin: this.opts.origin, size: next.size, root: next.root() };
    const note = signCheckpoint(c, this.opts.signer);
    await this.store.addCheckpoint({ size: c.size, note, range: encodeRange(next) });
    this.signed = next;
    this.leaves?.push(...added);
    if (this.leaves) await this.pushToWitnesses(c, note);
  }

  /**
   * Replays the leaves stored after the signed tree onto its edge and checks the result is the
   * stored head: the head must extend what was signed. Undefined when the log did not grow.
   */
  private async extendSigned(
    signed: CompactRange,
  ): Promise<{ next: CompactRange; added: Buffer[] } | undefined> {
    const head = await this.store.head();
    if (head.size <= signed.size) return undefined;
    const next = signed.clone();
    const fresh = await this.store.leaves(signed.size, head.size);
    const added: Buffer[] = [];
    for (const [i, e] of fresh.entries()) {
      if (e.index !== signed.size + i)
        throw new AuditError('ERR_AUDIT_INCONSISTENT', `entry ${signed.size + i} is missing`);
      added.push(leafHash(e.leaf));
      next.append(added[i]!);
    }
    if (next.size !== head.size || !next.root().equals(head.root)) {
      // The stored log no longer extends what was signed: stop recording (and so stop serving) until someone looks.
      this.#broken = `tree of size ${head.size} does not extend checkpoint ${signed.size}`;
      this.opts.log.error('AUDIT LOG TAMPERED OR CORRUPT: refusing further appends', { reason: this.broken });
      throw new AuditError(
        'ERR_AUDIT_INCONSISTENT',
        `tree of size ${head.size} does not extend checkpoint ${signed.size}`,
      );
    }
    return { next, added };
  }

  /**
   * The edge of the last stored checkpoint, its signature and root checked: from the range stored
   * with it when there is one (start-up then reads no leaf before the checkpoint), else (a
   * checkpoint written before ranges were kept, or witnesses to prove consistency to) from the leaves.
   */
  private async loadSigned(): Promise<CompactRange> {
    const last = await this.store.latestCheckpoint();
    if (this.opts.witnesses?.length) this.leaves = [];
    if (!last) return new CompactRange();
    const c = openCheckpoint(last.note, this.opts.signer, this.opts.origin);
    const range =
      last.range === undefined || this.leaves
        ? await this.replayLeaves(c.size)
        : storedRange(c.size, last.range);
    if (range.size !== c.size || !range.root().equals(c.root)) {
      throw new AuditError('ERR_AUDIT_INCONSISTENT', `stored entries do not match checkpoint ${c.size}`);
    }
    return range;
  }

  /** The tree of the first `size` leaves, rebuilt from every one of them (kept when witnesses need proofs). */
  private async replayLeaves(size: number): Promise<CompactRange> {
    const range = new CompactRange();
    const leaves = (await this.store.leaves(0, size)).map((e) => leafHash(e.leaf));
    for (const h of leaves) range.append(h);
    if (this.leaves) this.leaves = leaves;
    return range;
  }

  /** Witnesses are outside the trust boundary: a failure is logged, never fatal to calls. */
  private async pushToWitnesses(c: Checkpoint, note: string): Promise<void> {
    const text = checkpointText(c);
    for (const w of this.opts.witnesses ?? []) {
      try {
        const name = parseWitnessKey(w.key).name;
        let old = this.witnessSizes.get(w.url) ?? 0;
        for (let attempt = 0; attempt < 2; attempt++) {
          const proof = old === 0 || old === c.size ? [] : consistencyProof(this.leaves!, old, c.size);
          const r = await addCheckpoint(w, old, proof, note, text);
          if (r.ok) {
            await this.store.addCosignature({ size: c.size, witness: name, line: r.cosignature });
            this.witnessSizes.set(w.url, c.size);
            break;
          }
          if (r.status !== 409 || r.knownSize === undefined || r.knownSize > c.size) {
            this.opts.log.warn('audit witness refused the checkpoint', { witness: w.url, status: r.status });
            break;
          }
          old = r.knownSize;
        }
      } catch (err) {
        this.opts.log.warn('audit witness unreachable', { witness: w.url, err: String(err) });
      }
    }
  }

  stopTimer(): void {
    clearInterval(this.timer);
    this.storage.stopTimer();
  }

  /** Waits for queued appends, writes a last checkpoint, flushes to stable storage and closes the store. */
  async close(): Promise<void> {
    this.closed = true;
    this.stopTimer();
    while (this.flushing) await new Promise((r) => setImmediate(r));
    await this.checkpoint().catch(() => {});
    await this.storage.drain();
    await this.store.sync().catch(() => {});
    await this.store.close();
  }
}

/** A stored range that does not even fit its size is as wrong as one with another root. */
function storedRange(size: number, text: string): CompactRange {
  try {
    return decodeRange(size, text);
  } catch {
    throw new AuditError('ERR_AUDIT_INCONSISTENT', `the range stored with checkpoint ${size} is malformed`);
  }
}
