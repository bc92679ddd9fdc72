import { UsageError } from '../errors.ts';
import { isObject } from '../jsonrpc.ts';
import { type Checkpoint, openCheckpoint } from './checkpoint.ts';
import { AuditError } from './errors.ts';
import { leafHash, verifyInclusion } from './merkle.ts';
import { metaOfRecord } from './meta.ts';
import type { Verifier } from './note.ts';
import { callOf, type ReplayCall, type ReplayEntry } from './replay-calls.ts';
import { checkedMeta, type LogScan, locateChange, scanLog, type Tampering } from './replay-scan.ts';
import type { EntryFilter } from './search.ts';
import type { AuditStore, StoredCheckpoint, StoredEntry } from './store.ts';

export interface ReplayQuery {
  readonly session?: string | undefined;
  readonly principal?: string | undefined;
  /** ISO-8601, a time ago (`15m`, `2h`, `7d`), or milliseconds since the epoch. */
  readonly since?: string | undefined;
}

export interface ReplayReport {
  /** The latest signed checkpoint: every entry shown was proven against it. */
  readonly checkpoint: { readonly size: number; readonly root: string };
  /** Entries the store holds; those past the checkpoint are not replayed. */
  readonly logSize: number;
  readonly calls: readonly ReplayCall[];
  readonly entries: number;
  readonly verified: number;
  /** Every entry up to the checkpoint found changed, missing or unprovable, by index. */
  readonly tampered: readonly Tampering[];
}

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

export function parseSince(text: string, now: number): number {
  const ago = /^([0-9]{1,9})([smhd])$/.exec(text);
  if (ago) return now - Number(ago[1]) * UNIT_MS[ago[2] as keyof typeof UNIT_MS];
  if (/^[0-9]+$/.test(text)) return Number(text);
  const t = /^[0-9]{4}-[0-9]{2}-[0-9]{2}/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isFinite(t)) return t;
  throw new UsageError(
    '--since must be an ISO-8601 time (2026-05-01T09:00:00Z), a time ago (15m, 2h, 7d) or milliseconds since the epoch',
  );
}

/** Which calls to replay: those with an entry matching every part given; at least one is required. */
export function replayFilter(q: ReplayQuery, now: number): EntryFilter {
  if (!q.session && !q.principal && !q.since)
    throw new UsageError('replay: --session ID, --principal P or --since T is required');
  return {
    ...(q.session ? { session: q.session } : {}),
    ...(q.principal ? { principal: q.principal } : {}),
    ...(q.since ? { since: parseSince(q.since, now) } : {}),
  };
}

/**
 * The calls selected by `filter` (by what their signed leaves say), each with
 * every record naming it, as of the latest signed checkpoint. Each entry shown
 * is proven: its leaf hash included in the checkpoint (RFC 6962), the
 * checkpoint's signature verified, its stored columns matching its leaf.
 */
export async function replayLog(
  store: AuditStore,
  verifier: Verifier,
  filter: EntryFilter,
): Promise<ReplayReport> {
  const stored = await store.checkpoints();
  const c = latestCheckpoint(stored.at(-1), verifier);
  const logSize = (await store.head()).size;
  const scan = await scanLog(store, c.size, filter);
  const treeOk = scan.complete && scan.levels.root(c.size).equals(c.root);
  const located = scan.complete && !treeOk ? [locateChange(scan, c, stored, verifier)] : [];
  const wanted = [...scan.selected].flatMap((id) => scan.byCall.get(id) ?? []).sort((a, b) => a - b);
  const rows = await fetchEntries(store, wanted);
  const entries = rows.map((e) => proveEntry(e, scan, c, treeOk ? undefined : located));
  const read = new Set(rows.map((e) => e.index));
  const gone = wanted.filter((i) => !read.has(i)).map(deleted);
  return {
    checkpoint: { size: c.size, root: c.root.toString('base64') },
    logSize,
    calls: groupCalls(entries),
    entries: entries.length,
    verified: entries.filter((e) => e.verified).length,
    tampered: distinct([...scan.tampered, ...located, ...gone, ...entries.flatMap((e) => e.problems)]),
  };
}

/** The replay's failure, for the exit status: the first entry found tampered and how many more. */
export function replayFailure(report: ReplayReport): AuditError | undefined {
  const [t, ...more] = report.tampered;
  if (!t) return undefined;
  const also = more.length > 0 ? ` (and ${more.length} more)` : '';
  return new AuditError('ERR_AUDIT_TAMPERED', `entry ${t.index}: ${t.reason}${also}; run audit verify`, {
    detail: { index: t.index, code: t.code, ...(t.column ? { column: t.column } : {}) },
  });
}

function latestCheckpoint(latest: StoredCheckpoint | undefined, verifier: Verifier): Checkpoint {
  if (!latest) throw new AuditError('ERR_AUDIT_INCONSISTENT', 'the log has no signed checkpoint yet');
  const c = openCheckpoint(latest.note, verifier);
  if (c.size !== latest.size)
    throw new AuditError(
      'ERR_AUDIT_TAMPERED',
      `the checkpoint stored at size ${latest.size} signs size ${c.size}`,
    );
  return c;
}

const GAP = 64;
const PAGE = 4096;

/** The entries at `indexes` (ascending), a run of nearby ones per query. */
async function fetchEntries(store: AuditStore, indexes: readonly number[]): Promise<StoredEntry[]> {
  const wanted = new Set(indexes);
  const found: StoredEntry[] = [];
  for (let i = 0; i < indexes.length; ) {
    let j = i;
    while (
      j + 1 < indexes.length &&
      indexes[j + 1]! - indexes[j]! <= GAP &&
      indexes[j + 1]! - indexes[i]! < PAGE
    )
      j++;
    const rows = await store.entries(indexes[i]!, indexes[j]! + 1);
    found.push(...rows.filter((e) => wanted.has(e.index)));
    i = j + 1;
  }
  return found;
}

const deleted = (index: number): Tampering => ({
  index,
  code: 'entry-missing',
  reason: 'the entry was deleted while the replay ran',
});

/**
 * Proves one entry read afresh: its leaf's inclusion proof against the
 * checkpoint, and its columns against its leaf. When the stored tree no longer
 * makes the checkpoint, nothing is provable: `located` says where it changed.
 */
function proveEntry(
  e: StoredEntry,
  scan: LogScan,
  c: Checkpoint,
  located: readonly Tampering[] | undefined,
): ReplayEntry {
  const problems: Tampering[] = [];
  const { problem } = checkedMeta(e);
  if (problem) problems.push(problem);
  let included = false;
  if (located) problems.push(...located.filter((t) => t.index === e.index));
  else {
    const proof = scan.levels.inclusionProof(e.index, c.size);
    included = verifyInclusion(e.index, c.size, leafHash(e.leaf), proof, c.root);
    if (!included)
      problems.push({
        index: e.index,
        code: 'entry-changed',
        reason: `its leaf hash is not included in checkpoint ${c.size}: the entry was changed`,
      });
  }
  const record = parseRecord(e.leaf);
  const type = typeof record.type === 'string' ? record.type : 'unknown';
  return { index: e.index, type, record, verified: included && problems.length === 0, problems };
}

function parseRecord(leaf: Buffer): Record<string, unknown> {
  try {
    const r: unknown = JSON.parse(leaf.toString('utf8'));
    return isObject(r) ? r : {};
  } catch {
    return {};
  }
}

/** Calls in the order their first entry was written; any record naming a call joins it. */
function groupCalls(entries: readonly ReplayEntry[]): ReplayCall[] {
  const byCall = new Map<string, ReplayEntry[]>();
  for (const e of entries) {
    // The call id the signed leaf names, as selection read it (a refusal count names its own id).
    const id = metaOfRecord(e.record)?.callId ?? `entry-${e.index}`;
    const list = byCall.get(id) ?? [];
    list.push(e);
    byCall.set(id, list);
  }
  return [...byCall].map(([id, list]) => callOf(id, list));
}

/** Each finding once, in index order. */
function distinct(found: readonly Tampering[]): Tampering[] {
  const seen = new Map<string, Tampering>();
  for (const t of found) {
    const key = `${t.index}:${t.code}:${t.column ?? ''}`;
    if (!seen.has(key)) seen.set(key, t);
  }
  return [...seen.values()].sort((a, b) => a.index - b.index);
}
