import { type Checkpoint, openCheckpoint } from './checkpoint.ts';
import { leafHash } from './merkle.ts';
import { columnMismatch, metaOfLeaf } from './meta.ts';
import type { Verifier } from './note.ts';
import { type EntryFilter, matchesFilter } from './search.ts';
import type { AuditStore, EntryMeta, StoredCheckpoint, StoredEntry } from './store.ts';
import { HashList, MerkleLevels } from './tree.ts';

/** What does not match, in `audit verify`'s words. */
export type TamperCode =
  | 'entry-missing'
  | 'entry-changed'
  | 'not-a-record'
  | 'column-changed'
  | 'history-differs';

export interface Tampering {
  readonly index: number;
  readonly code: TamperCode;
  readonly reason: string;
  /** For `column-changed`: the store's column that no longer says what the leaf says. */
  readonly column?: string;
}

/** One pass over the log up to a checkpoint: its tree, its calls, and what was found changed. */
export interface LogScan {
  readonly levels: MerkleLevels;
  /** The root stored with each entry by its writer (untrusted; only locates a change). */
  readonly rootsAfter: HashList | undefined;
  /** Every entry's index by the call id its signed leaf names. */
  readonly byCall: Map<string, number[]>;
  /** Calls with at least one entry matching the filter. */
  readonly selected: Set<string>;
  readonly tampered: Tampering[];
  /** False when an entry is missing: no tree, so nothing can be proven. */
  readonly complete: boolean;
}

const PAGE = 4096;

/** The entry's meta as its signed leaf says it, or what is wrong with the entry. */
export function checkedMeta(e: StoredEntry): { meta?: EntryMeta; problem?: Tampering } {
  const signed = metaOfLeaf(e.leaf);
  if (!signed)
    return { problem: { index: e.index, code: 'not-a-record', reason: 'the entry is not an audit record' } };
  const m = columnMismatch(e.meta, signed);
  if (!m) return { meta: signed };
  const reason = `column ${m.column} was changed (stored ${JSON.stringify(m.stored)}, the entry says ${JSON.stringify(m.signed)})`;
  return { meta: signed, problem: { index: e.index, code: 'column-changed', reason, column: m.column } };
}

/** An entry is missing: the tree cannot be rebuilt past it, so the scan stops there. */
function incomplete(scan: LogScan, index: number): LogScan {
  const gap: Tampering = {
    index,
    code: 'entry-missing',
    reason: 'the entry is missing (a gap in the sequence)',
  };
  return { ...scan, tampered: [...scan.tampered, gap], complete: false };
}

/** Reads entries [0, size) a page at a time, keeping leaf hashes and call ids, never the leaves. */
export async function scanLog(store: AuditStore, size: number, filter: EntryFilter): Promise<LogScan> {
  const scan = {
    levels: new MerkleLevels(),
    rootsAfter: new HashList() as HashList | undefined,
    byCall: new Map<string, number[]>(),
    selected: new Set<string>(),
    tampered: [] as Tampering[],
    complete: true,
  };
  for (let from = 0; from < size; from += PAGE) {
    const rows = await store.entries(from, Math.min(size, from + PAGE));
    for (const [i, e] of rows.entries()) {
      if (e.index !== from + i) return incomplete(scan, from + i);
      scan.levels.append(leafHash(e.leaf));
      if (e.rootAfter) scan.rootsAfter?.push(e.rootAfter);
      else scan.rootsAfter = undefined;
      const { meta, problem } = checkedMeta(e);
      if (problem) scan.tampered.push(problem);
      if (!meta) continue;
      const indexes = scan.byCall.get(meta.callId) ?? [];
      indexes.push(e.index);
      scan.byCall.set(meta.callId, indexes);
      if (matchesFilter(meta, filter)) scan.selected.add(meta.callId);
    }
    if (from + rows.length < Math.min(size, from + PAGE)) return incomplete(scan, from + rows.length);
  }
  return scan;
}

/** The stored checkpoints that carry a valid signature, smallest first; a forged one proves nothing. */
function signedCheckpoints(stored: readonly StoredCheckpoint[], verifier: Verifier): Checkpoint[] {
  return stored.flatMap((s) => {
    try {
      const c = openCheckpoint(s.note, verifier);
      return c.size === s.size ? [c] : [];
    } catch {
      return [];
    }
  });
}

/**
 * Where the stored leaves stop being the ones `c` signed. The signed checkpoints
 * before it bracket the change (history is append-only, so they match up to it);
 * within the bracket, the root stored with each entry names the first entry
 * changed. If those roots were rewritten too, the bracket is all there is to say.
 */
export function locateChange(
  scan: LogScan,
  c: Checkpoint,
  stored: readonly StoredCheckpoint[],
  verifier: Verifier,
): Tampering {
  let [lo, hi] = [0, c.size];
  for (const cp of signedCheckpoints(stored, verifier)) {
    if (cp.size === 0 || cp.size > c.size) continue;
    if (!scan.levels.root(cp.size).equals(cp.root)) {
      hi = cp.size;
      break;
    }
    lo = cp.size;
  }
  const roots = scan.rootsAfter;
  if (roots) {
    const range = scan.levels.rangeAt(lo);
    for (let i = lo; i < hi; i++) {
      range.append(scan.levels.leaf(i));
      if (!range.root().equals(roots.get(i)))
        return {
          index: i,
          code: 'entry-changed',
          reason: `the entry is not the one signed in checkpoint ${hi}: its leaf hash does not match the tree written with it`,
        };
    }
  }
  return {
    index: lo,
    code: 'history-differs',
    reason: `entries ${lo}..${hi - 1} differ from the ones signed in checkpoint ${hi}, and the roots stored with them were rewritten to match`,
  };
}
