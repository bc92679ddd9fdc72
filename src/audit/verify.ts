import { createHash } from 'node:crypto';
import { type Checkpoint, openCheckpoint } from './checkpoint.ts';
import { AuditError } from './errors.ts';
import { CompactRange, consistencyProof, leafHash, verifyConsistency } from './merkle.ts';
import type { Verifier } from './note.ts';
import type { AuditStore } from './store.ts';

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
  | { ok: false; index: number; reason: string };

const bad = (index: number, reason: string): VerifyResult => ({ ok: false, index, reason });

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
  const leaves: Buffer[] = [];
  const range = new CompactRange();
  const roots: Buffer[] = [];
  for (const e of entries) {
    if (e.index !== leaves.length) return bad(leaves.length, 'entry missing (gap in the sequence)');
    const h = leafHash(e.leaf);
    leaves.push(h);
    range.append(h);
    const root = range.root();
    roots.push(root);
    if (e.rootAfter && !e.rootAfter.equals(root))
      return bad(e.index, 'entry does not match the tree written with it (changed or reordered)');
  }
  for (const e of entries) {
    const missing = await missingBlob(store, e.leaf);
    if (missing) return bad(e.index, `payload stored beside the log ${missing}`);
  }
  if (leaves.length !== head.size) {
    return bad(
      Math.min(leaves.length, head.size),
      `tree head says ${head.size} entries, ${leaves.length} stored`,
    );
  }
  const rootAt = (size: number): Buffer => (size === 0 ? new CompactRange().root() : roots[size - 1]!);
  if (!rootAt(head.size).equals(head.root))
    return bad(head.size - 1, 'stored tree head root does not match the entries');

  const stored = await store.checkpoints();
  let previous: Checkpoint | undefined;
  for (const s of stored) {
    let c: Checkpoint;
    try {
      c = openCheckpoint(s.note, verifier);
    } catch (err) {
      return bad(s.size - 1, `checkpoint at size ${s.size}: ${(err as Error).message}`);
    }
    if (c.size !== s.size || c.size > head.size)
      return bad(s.size - 1, `checkpoint at size ${s.size} is beyond the log`);
    if (!rootAt(c.size).equals(c.root))
      return bad(c.size - 1, `checkpoint at size ${c.size}: root does not match the entries`);
    // Both roots come from one leaf sequence; the proof shows it to anyone holding only the two checkpoints.
    if (previous && previous.size > 0) {
      const proof = consistencyProof(leaves, previous.size, c.size);
      if (!verifyConsistency(previous.size, c.size, proof, previous.root, c.root)) {
        return bad(c.size - 1, `checkpoint at size ${c.size} is not consistent with ${previous.size}`);
      }
    }
    previous = c;
  }
  if (trusted !== undefined) {
    let t: Checkpoint;
    try {
      t = openCheckpoint(trusted, verifier);
    } catch (err) {
      throw new AuditError('ERR_AUDIT_SIGNATURE_INVALID', `trusted checkpoint: ${(err as Error).message}`);
    }
    if (t.size > head.size)
      return bad(head.size, `log has ${head.size} entries, fewer than the trusted checkpoint's ${t.size}`);
    if (!rootAt(t.size).equals(t.root)) {
      // The trusted checkpoint fixes only one root: some entry in [0, size) was rewritten.
      return bad(
        0,
        `history differs from the trusted checkpoint at size ${t.size} (entries 0..${t.size - 1} rewritten)`,
      );
    }
  }
  return {
    ok: true,
    size: head.size,
    checkpoints: stored.length,
    signedSize: previous?.size ?? 0,
    anchored: trusted !== undefined,
  };
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
