import { createHash } from 'node:crypto';
import { type Checkpoint, openCheckpoint } from './checkpoint.ts';
import { AuditError } from './errors.ts';
import { CompactRange, consistencyProof, leafHash, verifyConsistency } from './merkle.ts';
import { columnMismatch, metaOfLeaf } from './meta.ts';
import type { Verifier } from './note.ts';
import type { AuditStore, StoredCheckpoint, StoredEntry } from './store.ts';

export type VerifyResult =
  | {
      ok: true;
      size: number;
      checkpoints: number;
      /** Entries up to here are covered by a verified signed checkpoint; the rest only by the database. */
      signedSize: number;
      /** Whether a checkpoint kept outside the database (`trusted`) was checked too. */
      anchored: boolean;
    }
  | {
      ok: false;
      index: number;
      /** What kind of failure, for scripts; `reason` says it in words. */
      code: VerifyFailure;
      reason: string;
      /** For `column-changed`: which stored column no longer says what the entry's leaf says. */
      column?: string;
    };

export type VerifyFailure =
  | 'entry-missing'
  | 'entry-changed'
  | 'not-a-record'
  | 'column-changed'
  | 'payload-changed'
  | 'head-mismatch'
  | 'checkpoint-invalid'
  | 'history-differs';

const bad = (
  index: number,
  code: VerifyFailure,
  reason: string,
  column?: string,
): Extract<VerifyResult, { ok: false }> => ({
  ok: false,
  index,
  code,
  reason,
  ...(column === undefined ? {} : { column }),
});

type Failure = Extract<VerifyResult, { ok: false }>;

/** The tree the stored entries make: each entry's leaf hash, and the root after each. */
interface Tree {
  readonly leaves: Buffer[];
  readonly rootAt: (size: number) => Buffer;
}

/**
 * Recomputes the tree from the stored entries and checks every stored checkpoint
 * (signature, origin, root at its size) and the stored head. With `trusted` (a
 * checkpoint kept outside the database), also proves the log extends it.
 */
export async function verifyLog(
  store: AuditStore,
  verifier: Verifier,
  trusted?: string,
): Promise<VerifyResult> {
  const head = await store.head();
  const entries = await store.entries(0, Number.MAX_SAFE_INTEGER);
  const tree = rebuild(entries);
  if ('ok' in tree) return tree;
  for (const e of entries) {
    const columns = columnsProblem(e);
    if (columns) return columns;
  }
  for (const e of entries) {
    const missing = await missingBlob(store, e.leaf);
    if (missing) return bad(e.index, 'payload-changed', `payload stored beside the log ${missing}`);
  }
  if (tree.leaves.length !== head.size) {
    return bad(
      Math.min(tree.leaves.length, head.size),
      'head-mismatch',
      `tree head says ${head.size} entries, ${tree.leaves.length} stored`,
    );
  }
  if (!tree.rootAt(head.size).equals(head.root))
    return bad(head.size - 1, 'head-mismatch', 'stored tree head root does not match the entries');
  const stored = await store.checkpoints();
  const signed = checkCheckpoints(stored, tree, head.size, verifier);
  if ('ok' in signed) return signed;
  const anchor = trusted === undefined ? undefined : checkTrusted(trusted, tree, head.size, verifier);
  if (anchor) return anchor;
  return {
    ok: true,
    size: head.size,
    checkpoints: stored.length,
    signedSize: signed.size,
    anchored: trusted !== undefined,
  };
}

/** Replays the entries into a tree, checking the sequence and the root stored with each. */
function rebuild(entries: readonly StoredEntry[]): Tree | Failure {
  const leaves: Buffer[] = [];
  const range = new CompactRange();
  const roots: Buffer[] = [];
  for (const e of entries) {
    if (e.index !== leaves.length)
      return bad(leaves.length, 'entry-missing', 'entry missing (gap in the sequence)');
    const h = leafHash(e.leaf);
    leaves.push(h);
    range.append(h);
    const root = range.root();
    roots.push(root);
    if (e.rootAfter && !e.rootAfter.equals(root))
      return bad(
        e.index,
        'entry-changed',
        'entry does not match the tree written with it (changed or reordered)',
      );
  }
  const empty = new CompactRange().root();
  return { leaves, rootAt: (size) => (size === 0 ? empty : roots[size - 1]!) };
}

/** Every stored checkpoint must verify, match the entries and extend the one before; returns the last one's size. */
function checkCheckpoints(
  stored: readonly StoredCheckpoint[],
  tree: Tree,
  headSize: number,
  verifier: Verifier,
): { size: number } | Failure {
  let previous: Checkpoint | undefined;
  for (const s of stored) {
    let c: Checkpoint;
    try {
      c = openCheckpoint(s.note, verifier);
    } catch (err) {
      return bad(s.size - 1, 'checkpoint-invalid', `checkpoint at size ${s.size}: ${(err as Error).message}`);
    }
    if (c.size !== s.size || c.size > headSize)
      return bad(s.size - 1, 'checkpoint-invalid', `checkpoint at size ${s.size} is beyond the log`);
    if (!tree.rootAt(c.size).equals(c.root))
      return bad(
        c.size - 1,
        'checkpoint-invalid',
        `checkpoint at size ${c.size}: root does not match the entries`,
      );
    // Both roots come from one leaf sequence; the proof shows it to anyone holding only the two checkpoints.
    if (previous && previous.size > 0) {
      const proof = consistencyProof(tree.leaves, previous.size, c.size);
      if (!verifyConsistency(previous.size, c.size, proof, previous.root, c.root)) {
        return bad(
          c.size - 1,
          'checkpoint-invalid',
          `checkpoint at size ${c.size} is not consistent with ${previous.size}`,
        );
      }
    }
    previous = c;
  }
  return { size: previous?.size ?? 0 };
}

/** The log must extend a checkpoint kept outside the database. */
function checkTrusted(
  trusted: string,
  tree: Tree,
  headSize: number,
  verifier: Verifier,
): Failure | undefined {
  let t: Checkpoint;
  try {
    t = openCheckpoint(trusted, verifier);
  } catch (err) {
    throw new AuditError('ERR_AUDIT_SIGNATURE_INVALID', `trusted checkpoint: ${(err as Error).message}`);
  }
  if (t.size > headSize)
    return bad(
      headSize,
      'history-differs',
      `log has ${headSize} entries, fewer than the trusted checkpoint's ${t.size}`,
    );
  if (!tree.rootAt(t.size).equals(t.root)) {
    // The trusted checkpoint fixes only one root: some entry in [0, size) was rewritten.
    return bad(
      0,
      'history-differs',
      `history differs from the trusted checkpoint at size ${t.size} (entries 0..${t.size - 1} rewritten)`,
    );
  }
  return undefined;
}

/** The columns stored beside a leaf must say what the leaf says: queries by hand go by them. */
function columnsProblem(e: StoredEntry): Failure | undefined {
  const signed = metaOfLeaf(e.leaf);
  if (!signed) return bad(e.index, 'not-a-record', 'entry is not an audit record');
  const m = columnMismatch(e.meta, signed);
  if (!m) return undefined;
  return bad(
    e.index,
    'column-changed',
    `column ${m.column} was changed: stored ${JSON.stringify(m.stored)}, the entry says ${JSON.stringify(m.signed)}`,
    m.column,
  );
}

/** Payloads kept beside the log must still be there and hash to what the leaf commits to. */
async function missingBlob(store: AuditStore, leaf: Buffer): Promise<string | undefined> {
  if (!leaf.includes('"blob":')) return undefined;
  let ref: unknown;
  try {
    ref = (JSON.parse(leaf.toString('utf8')) as { args?: unknown }).args;
  } catch {
    return undefined;
  }
  const hash = (ref as { blob?: unknown } | null)?.blob;
  if (typeof hash !== 'string') return undefined;
  const data = await store.blob(hash);
  if (!data) return `${hash} is missing`;
  return createHash('sha256').update(data).digest('hex') === hash ? undefined : `${hash} was changed`;
}
