import { PortcullisError } from '../errors.ts';
import type { RecordKind, RecordQuery, StoredRecord } from './records.ts';

/** The largest body a record may carry, as UTF-8 JSON: an approval holds the call's arguments, and every poll reads it back. */
export const MAX_BODY_BYTES = 64 * 1024;
/** The largest id, status or match key: each is an index entry (PostgreSQL refuses btree entries of a few KiB). */
export const MAX_KEY_BYTES = 1024;
export const DEFAULT_FIND_LIMIT = 100;
export const MAX_FIND_LIMIT = 1000;

type Written = Pick<StoredRecord, 'id' | 'status' | 'matchKey' | 'expiresAt' | 'body'> & {
  readonly createdAt?: number;
};

/** The body as stored JSON text, once the record is known to fit; a record that does not is refused whole. */
export function encodeBody(record: Written): string {
  for (const [field, value] of [
    ['id', record.id],
    ['status', record.status],
    ['matchKey', record.matchKey],
  ] as const) {
    if (Buffer.byteLength(value) > MAX_KEY_BYTES)
      throw new PortcullisError('ERR_STATE_RECORD_TOO_LARGE', `record ${field} over ${MAX_KEY_BYTES} bytes`);
  }
  checkTime('expiresAt', record.expiresAt);
  if (record.createdAt !== undefined) checkTime('createdAt', record.createdAt);
  const text = JSON.stringify(record.body);
  if (Buffer.byteLength(text) > MAX_BODY_BYTES)
    throw new PortcullisError('ERR_STATE_RECORD_TOO_LARGE', `record body over ${MAX_BODY_BYTES} bytes`, {
      detail: { id: record.id },
    });
  return text;
}

export function checkTime(field: string, value: number): void {
  if (!Number.isSafeInteger(value)) throw new RangeError(`${field} must be whole milliseconds`);
}

/** How many records a `find` returns: the default, or the caller's limit held to the maximum. */
export function findLimit(query: RecordQuery): number {
  const limit = query.limit ?? DEFAULT_FIND_LIMIT;
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError('find limit must be a positive integer');
  return Math.min(limit, MAX_FIND_LIMIT);
}

/** Newest first, then by id in byte order (the order SQLite, PostgreSQL's "C" collation and Redis all sort in). */
export function newestFirst(a: StoredRecord, b: StoredRecord): number {
  return b.createdAt - a.createdAt || Buffer.compare(Buffer.from(b.id), Buffer.from(a.id));
}

/** A record as the SQL stores keep it (PostgreSQL hands BIGINT columns back as strings). */
export interface RecordRow {
  kind: RecordKind;
  id: string;
  version: number | string;
  status: string;
  match_key: string;
  created_at: number | string;
  expires_at: number | string;
  body: string;
}

export const fromRow = (r: RecordRow): StoredRecord => ({
  kind: r.kind,
  id: r.id,
  version: Number(r.version),
  status: r.status,
  matchKey: r.match_key,
  createdAt: Number(r.created_at),
  expiresAt: Number(r.expires_at),
  body: JSON.parse(r.body) as Record<string, unknown>,
});

/**
 * Runs one store operation; any failure but the store's own refusals becomes
 * `ERR_STATE_UNAVAILABLE`, so callers fail closed on one code.
 */
export async function guarded<T>(what: string, op: () => Promise<T> | T): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof PortcullisError) throw err;
    throw new PortcullisError('ERR_STATE_UNAVAILABLE', `record store: ${what} failed`, { cause: err });
  }
}
