import { CompactRange, leafHash } from './merkle.ts';

/**
 * What the stores keep beside each leaf, in indexed columns for queries by
 * hand. Derived from the leaf (`metaOfRecord`) and checked against it by
 * `audit verify`, `tail` and `replay`: a column is never trusted on its own.
 */
export interface EntryMeta {
  readonly kind:
    | 'decision'
    | 'outcome'
    | 'refusal'
    | 'approval'
    | 'breakglass'
    | 'tool-pin'
    | 'server-pin'
    | 'upstream-start'
    | 'lease'
    | 'egress'
    | 'admin'
    | 'policy-set';
  readonly callId: string;
  readonly principal: string;
  readonly tool: string;
  readonly decision: string;
  readonly session: string;
  readonly time: number;
}

export interface Blob {
  readonly hash: string;
  readonly data: Buffer;
}

export interface AppendItem {
  readonly leaf: Buffer;
  readonly meta: EntryMeta;
  readonly blobs: readonly Blob[];
}

export type StoredLeaf = Pick<StoredEntry, 'index' | 'leaf'>;

export interface StoredEntry {
  readonly index: number;
  readonly leaf: Buffer;
  /** The tree root right after this entry, as the writer computed it (untrusted; locates changes). */
  readonly rootAfter?: Buffer;
  /** The columns stored beside the leaf (untrusted until checked against it). */
  readonly meta: EntryMeta;
}

export interface TreeHead {
  readonly size: number;
  readonly root: Buffer;
}

export interface StoredCheckpoint {
  readonly size: number;
  readonly note: string;
  /**
   * The tree's compact range at this size (`encodeRange`), stored beside the note so a writer
   * starts from it instead of replaying every leaf; absent in checkpoints written before it was
   * kept. Untrusted: a writer accepts it only if its root is the signed root.
   */
  readonly range?: string;
}

export interface StoredCosignature {
  readonly size: number;
  readonly witness: string;
  readonly line: string;
}

/**
 * An append-only log store. `append` runs under the store's single-writer lock:
 * it reads the stored tree head, writes the entries right after it and moves the
 * head, all in one durable transaction, or nothing.
 */
export interface AuditStore {
  /**
   * `sync`: the commit also puts every entry committed so far on stable storage
   * before it resolves, as `sync()` would, in the same step (a store opened
   * `each` always does).
   */
  append(items: readonly AppendItem[], opts?: AppendOptions): Promise<TreeHead & { first: number }>;
  head(): Promise<TreeHead>;
  /** Entries [from, to) in index order. */
  entries(from: number, to: number): Promise<StoredEntry[]>;
  /** At most `limit` stored entries from index `from` on, in index order, gaps included as they are: a page of a full scan. */
  entriesFrom(from: number, limit: number): Promise<StoredEntry[]>;
  /** Only the leaves of entries [from, to), in index order: what a checkpoint hashes, without the columns. */
  leaves(from: number, to: number): Promise<StoredLeaf[]>;
  addCheckpoint(checkpoint: StoredCheckpoint): Promise<void>;
  checkpoints(): Promise<StoredCheckpoint[]>;
  /** The checkpoint of the largest size, or none: what a writer starts from. */
  latestCheckpoint(): Promise<StoredCheckpoint | undefined>;
  /** A witness's cosignature line for the checkpoint of `size` (c2sp.org/tlog-cosignature). */
  addCosignature(c: StoredCosignature): Promise<void>;
  cosignatures(size: number): Promise<StoredCosignature[]>;
  blob(hash: string): Promise<Buffer | undefined>;
  /**
   * Puts every entry committed so far on stable storage (what a power loss
   * cannot take). A store opened to sync each commit has nothing left to do.
   */
  sync(): Promise<void>;
  /** Throws ERR_AUDIT_STORE_LOST when the file behind the store was deleted or replaced (stores kept in a file). */
  assertSameFile?(): void;
  close(): Promise<void>;
}

/**
 * How a store commits. `each`: every commit waits for stable storage (fsync).
 * `deferred`: a commit reaches the database (safe from a crash of the gateway
 * process) and stable storage only at the next `sync()`.
 */
export type CommitSync = 'each' | 'deferred';

export interface AppendOptions {
  readonly sync?: boolean;
}

/** A commit went through but could not be put on stable storage: the log must stop (the kernel may have dropped the pages). */
export class StableStorageFailed extends Error {}

/** The stored head's compact range, as one text column. */
export const encodeRange = (r: CompactRange): string => r.hashes.map((h) => h.toString('base64')).join(',');

export const decodeRange = (size: number, text: string): CompactRange =>
  new CompactRange(size, text === '' ? [] : text.split(',').map((h) => Buffer.from(h, 'base64')));

/**
 * Extends the head by `items`; returns the new range, the root after each item
 * (stored with it, so `audit verify` can name the first entry that changed) and
 * the new root (the last of them: a root costs a hash per level of the tree).
 */
export function extend(
  range: CompactRange,
  items: readonly AppendItem[],
): { next: CompactRange; roots: Buffer[]; root: Buffer } {
  const next = range.clone();
  const roots = items.map((item) => {
    next.append(leafHash(item.leaf));
    return next.root();
  });
  return { next, roots, root: roots.at(-1) ?? next.root() };
}
