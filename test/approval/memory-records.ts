/**
 * A Map-based `RecordStore`: a test double of our own interface for the
 * webhook verifier's tests (the SQLite, PostgreSQL and Redis stores have their
 * own tests against the real databases).
 */
import { PortcullisError } from '../../src/errors.ts';
import type { RecordKind, RecordQuery, RecordStore, StoredRecord } from '../../src/state/records.ts';

export class MemoryRecords implements RecordStore {
  readonly records = new Map<string, StoredRecord>();
  /** When set, every call fails as a store that cannot answer. */
  down = false;

  async insert(record: Omit<StoredRecord, 'version'>): Promise<boolean> {
    this.#check();
    const key = `${record.kind}/${record.id}`;
    if (this.records.has(key)) return false;
    this.records.set(key, { ...record, version: 1 });
    return true;
  }

  async get(kind: RecordKind, id: string): Promise<StoredRecord | undefined> {
    this.#check();
    return this.records.get(`${kind}/${id}`);
  }

  async getMany(kind: RecordKind, ids: readonly string[]): Promise<StoredRecord[]> {
    this.#check();
    return ids.flatMap((id) => this.records.get(`${kind}/${id}`) ?? []);
  }

  async find(kind: RecordKind, query: RecordQuery): Promise<StoredRecord[]> {
    this.#check();
    return [...this.records.values()]
      .filter((r) => r.kind === kind)
      .filter((r) => !query.status || query.status.includes(r.status))
      .filter((r) => query.matchKey === undefined || r.matchKey === query.matchKey)
      .sort((a, b) => b.createdAt - a.createdAt || b.id.localeCompare(a.id))
      .slice(0, Math.min(query.limit ?? 100, 1000));
  }

  async replace(
    expected: StoredRecord,
    change: Pick<StoredRecord, 'status' | 'matchKey' | 'expiresAt' | 'body'>,
  ): Promise<StoredRecord | undefined> {
    this.#check();
    const key = `${expected.kind}/${expected.id}`;
    const stored = this.records.get(key);
    if (!stored || stored.version !== expected.version) return undefined;
    const next = { ...stored, ...change, version: stored.version + 1 };
    this.records.set(key, next);
    return next;
  }

  async purgeExpired(before: number): Promise<number> {
    this.#check();
    let n = 0;
    for (const [key, r] of this.records)
      if (r.expiresAt < before) {
        this.records.delete(key);
        n++;
      }
    return n;
  }

  async close(): Promise<void> {}

  #check(): void {
    if (this.down) throw new PortcullisError('ERR_STATE_UNAVAILABLE', 'memory store is down');
  }
}
