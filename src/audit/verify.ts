import { createHash } from 'node:crypto';
import { type Checkpoint, openCheckpoint } from './checkpoint.ts';
import { AuditError } from './errors.ts';
import { CompactRange, leafHash } from './merkle.ts';
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

/** Entries read per page: the scan keeps one page, a compact range and a root per checkpoint size. */
export const VERIFY_PAGE = 4096;

/** The roots the stored entries make at the sizes asked for, read in pages: memory does not grow with the log. */
interface Tree {
  /** How many entries are stored, gapless from 0. */
  readonly size: number;
  readonly rootAt: (size: number) => Buffer;
}

/** What the scan found: the first failure of each kind, in index order, as one full read would. */
interface Scan {
  readonly tree: Tree;
  readonly columns?: Failure;
  readonly payload?: Failure;
}

/**
 * Recomputes the tree from the stored entries and checks every stored checkpoint
 * (signature, origin, root at its size) and the stored head. With `trusted` (a
 * checkpoint kept outside the database), also proves the log extends it.
 * Reads the log once, a page at a time; reports the same failure a check of
 * the whole log at once would (sequence first, then columns, payloads, the
 * head, the checkpoints, the trusted checkpoint).
 */
export async function verifyLog(
  store: AuditStore,
  verifier: Verifier,
  trusted?: string,
  pageSize = VERIFY_PAGE,
): Promise<VerifyResult> {
  const head = await store.head();
  const stored = await store.checkpoints();
  let anchor: Checkpoint | Error | undefined;
  if (trusted !== undefined) {
    try {
      anchor = openCheckpoint(trusted, verifier);
    } catch (err) {
      anchor = err as Error;
    }
  }
  const sizes = new Set([head.size, ...stored.map((s) => s.size)]);
  if (anchor && !(anchor instanceof Error)) sizes.add(anchor.size);
  const scan = await scanEntries(store, sizes, pageSize);
  if ('ok' in scan) return scan;
  const { tree } = scan;
  if (scan.columns) return scan.columns;
  if (scan.payload) return scan.payload;
  if (tree.size !== head.size) {
    return bad(
      Math.min(tree.size, head.size),
      'head-mismatch',
      `tree head says ${head.size} entries, ${tree.size} stored`,
    );
  }
  if (!tree.rootAt(head.size).equals(head.root))
    return bad(head.size - 1, 'head-mismatch', 'stored tree head root does not match the entries');
  const signed = checkCheckpoints(stored, tree, head.size, verifier);
  if ('ok' in signed) return signed;
  if (anchor instanceof Error)
    throw new AuditError('ERR_AUDIT_SIGNATURE_INVALID', `trusted checkpoint: ${anchor.message}`);
  const anchored = anchor === undefined ? undefined : checkTrusted(anchor, tree, head.size);
  if (anchored) return anchored;
  return {
    ok: true,
    size: head.size,
    checkpoints: stored.length,
    signedSize: signed.size,
    anchored: trusted !== undefined,
  };
}

/**
 * Replays every stored entry into a compact range, a page at a time, checking
 * the sequence and the root stored with each (the first such failure ends the
 * scan: nothing is reported before it), and noting the first entry whose
 * columns or payload do not match. Keeps the root at each size in `sizes`.
 */
async function scanEntries(
  store: AuditStore,
  sizes: ReadonlySet<number>,
  pageSize: number,
): Promise<Scan | Failure> {
  const range = new CompactRange();
  const roots = new Map<number, Buffer>([[0, range.root()]]);
  let columns: Failure | undefined;
  let payload: Failure | undefined;
  for (;;) {
    const page = await store.entriesFrom(range.size, pageSize);
    if (page.length === 0) break;
    for (const e of page) {
      if (e.index !== range.size)
        return bad(range.size, 'entry-missing', 'entry missing (gap in the sequence)');
      range.append(leafHash(e.leaf));
      const root = range.root();
      if (e.rootAfter && !e.rootAfter.equals(root))
        return bad(
          e.index,
          'entry-changed',
          'entry does not match the tree written with it (changed or reordered)',
        );
      if (sizes.has(range.size)) roots.set(range.size, root);
      columns ??= columnsProblem(e);
      // A payload matters only while no column failed before it: the first failure in order is reported.
      if (!columns && !payload) {
        const missing = await missingBlob(store, e.leaf);
        if (missing) payload = bad(e.index, 'payload-changed', `payload stored beside the log ${missing}`);
      }
    }
  }
  const rootAt = (n: number): Buffer => {
    const root = roots.get(n);
    // Callers ask only for sizes in `sizes` the scan reached (they compare with `size` first).
    if (!root) throw new Error(`no root kept for size ${n}`);
    return root;
  };
  return { tree: { size: range.size, rootAt }, columns, payload };
}

/** Every stored checkpoint must verify and match the entries; returns the last one's size. */
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
    // Each root is recomputed from the one sequence of stored leaves: checkpoints that all match
    // it are consistent with one another (what a consistency proof between two of them shows).
    if (!tree.rootAt(c.size).equals(c.root))
      return bad(
        c.size - 1,
        'checkpoint-invalid',
        `checkpoint at size ${c.size}: root does not match the entries`,
      );
    previous = c;
  }
  return { size: previous?.size ?? 0 };
}

/** The log must extend a checkpoint kept outside the database. */
function checkTrusted(t: Checkpoint, tree: Tree, headSize: number): Failure | undefined {
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
  let record: { args?: unknown; policies?: unknown };
  try {
    record = JSON.parse(leaf.toString('utf8')) as typeof record;
  } catch {
    return undefined;
  }
  // A decision's oversized arguments; a policy set's texts.
  for (const ref of [record.args, record.policies]) {
    const hash = (ref as { blob?: unknown } | null | undefined)?.blob;
    if (typeof hash !== 'string') continue;
    const data = await store.blob(hash);
    if (!data) return `${hash} is missing`;
    if (createHash('sha256').update(data).digest('hex') !== hash) return `${hash} was changed`;
  }
  return undefined;
}
