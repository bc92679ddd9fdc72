import { AuditError } from './errors.ts';
import { columnMismatch, metaOfLeaf } from './meta.ts';
import type { AuditStore, EntryMeta, StoredEntry } from './store.ts';

/** What `audit tail` and `audit replay` select by: always what the signed leaf says, never a column alone. */
export interface EntryFilter {
  readonly principal?: string;
  readonly tool?: string;
  readonly decision?: string;
  readonly session?: string;
  /** Milliseconds since the epoch: entries at or after. */
  readonly since?: number;
}

const PAGE = 4096;

/**
 * The entry's meta as its leaf says it, after checking that the columns stored
 * beside it say the same: a changed column would hide the entry from anyone
 * querying the store by hand, so it is reported as tampering.
 */
export function signedMeta(e: StoredEntry): EntryMeta {
  const signed = metaOfLeaf(e.leaf);
  if (!signed)
    throw new AuditError('ERR_AUDIT_TAMPERED', `entry ${e.index} is not an audit record; run audit verify`, {
      detail: { index: e.index },
    });
  const m = columnMismatch(e.meta, signed);
  if (m)
    throw new AuditError(
      'ERR_AUDIT_TAMPERED',
      `entry ${e.index}: column ${m.column} was changed (stored ${JSON.stringify(m.stored)}, the entry says ${JSON.stringify(m.signed)}); run audit verify`,
      { detail: { index: e.index, column: m.column } },
    );
  return signed;
}

export const matchesFilter = (m: EntryMeta, f: EntryFilter): boolean =>
  (f.principal === undefined || m.principal === f.principal) &&
  (f.tool === undefined || m.tool === f.tool) &&
  (f.decision === undefined || m.decision === f.decision) &&
  (f.session === undefined || m.session === f.session) &&
  (f.since === undefined || m.time >= f.since);

/** Entries [from, to), all present: a missing one could only have been deleted. */
async function page(store: AuditStore, from: number, to: number): Promise<StoredEntry[]> {
  const rows = await store.entries(from, to);
  rows.forEach((e, i) => {
    if (e.index !== from + i)
      throw new AuditError('ERR_AUDIT_TAMPERED', `entry ${from + i} is missing; run audit verify`, {
        detail: { index: from + i },
      });
  });
  if (rows.length !== to - from)
    throw new AuditError('ERR_AUDIT_TAMPERED', `entry ${from + rows.length} is missing; run audit verify`, {
      detail: { index: from + rows.length },
    });
  return rows;
}

/** The matching entries in [from, to), in index order; every entry read is checked. */
export async function matchingEntries(
  store: AuditStore,
  f: EntryFilter,
  from: number,
  to: number,
): Promise<StoredEntry[]> {
  const found: StoredEntry[] = [];
  for (let start = from; start < to; start += PAGE) {
    for (const e of await page(store, start, Math.min(to, start + PAGE)))
      if (matchesFilter(signedMeta(e), f)) found.push(e);
  }
  return found;
}

/** The last `limit` matching entries before `end`, in index order, read backwards a page at a time. */
export async function lastMatchingEntries(
  store: AuditStore,
  f: EntryFilter,
  limit: number,
  end: number,
): Promise<StoredEntry[]> {
  const found: StoredEntry[] = [];
  for (let stop = end; stop > 0 && found.length < limit; stop -= PAGE) {
    const rows = await page(store, Math.max(0, stop - PAGE), stop);
    const matching = rows.filter((e) => matchesFilter(signedMeta(e), f));
    found.push(...matching.reverse().slice(0, limit - found.length));
  }
  return found.reverse();
}
