import { guarded } from './record-rules.ts';
import type { RecordKind, RecordQuery, RecordStore, StoredRecord } from './records.ts';
import type { Revocation, RevocationStore, RevocationSubject } from './revocations.ts';

/**
 * A revocation store whose driver loads on first use, so a gateway configured
 * for SQLite never loads `pg` or `ioredis`. A driver that fails to load fails
 * every call on the store, which the caller treats as revoked (fail closed).
 */
export class DeferredRevocationStore implements RevocationStore {
  private readonly load: () => Promise<RevocationStore>;
  private store: Promise<RevocationStore> | undefined;
  /** The driver once loaded: checks then call it without waiting on the load's promise. */
  private loaded: RevocationStore | undefined;

  constructor(load: () => Promise<RevocationStore>) {
    this.load = load;
  }

  async revoke(r: Revocation): Promise<void> {
    return (await this.opened()).revoke(r);
  }

  find(subject: RevocationSubject): Promise<Revocation | undefined> {
    if (this.loaded) return this.loaded.find(subject);
    return this.opened().then((store) => store.find(subject));
  }

  async sync(): Promise<void> {
    return (await this.opened()).sync();
  }

  async list(): Promise<Revocation[]> {
    return (await this.opened()).list();
  }

  /** Closes the driver if it was ever opened; never loads one just to close it. */
  async close(): Promise<void> {
    if (!this.store) return;
    const store = await this.store.catch(() => undefined);
    await store?.close();
  }

  private opened(): Promise<RevocationStore> {
    this.store ??= this.load().then((store) => {
      this.loaded = store;
      return store;
    });
    return this.store;
  }
}

/**
 * A record store whose driver loads on first use, like the revocation store
 * above. A driver that fails to load fails every call with `ERR_STATE_UNAVAILABLE`.
 */
export class DeferredRecordStore implements RecordStore {
  private readonly load: () => Promise<RecordStore>;
  private store: Promise<RecordStore> | undefined;
  private closing: Promise<void> | undefined;

  constructor(load: () => Promise<RecordStore>) {
    this.load = load;
  }

  async insert(record: Omit<StoredRecord, 'version'>): Promise<boolean> {
    return (await this.opened()).insert(record);
  }

  async get(kind: RecordKind, id: string): Promise<StoredRecord | undefined> {
    return (await this.opened()).get(kind, id);
  }

  async getMany(kind: RecordKind, ids: readonly string[]): Promise<StoredRecord[]> {
    return (await this.opened()).getMany(kind, ids);
  }

  async find(kind: RecordKind, query: RecordQuery): Promise<StoredRecord[]> {
    return (await this.opened()).find(kind, query);
  }

  async replace(
    expected: StoredRecord,
    change: Pick<StoredRecord, 'status' | 'matchKey' | 'expiresAt' | 'body'>,
  ): Promise<StoredRecord | undefined> {
    return (await this.opened()).replace(expected, change);
  }

  async purgeExpired(before: number): Promise<number> {
    return (await this.opened()).purgeExpired(before);
  }

  /** Closes the store if it was opened; once, however often it is asked (a gateway may be closed twice). */
  close(): Promise<void> {
    if (!this.store) return Promise.resolve();
    this.closing ??= this.store.catch(() => undefined).then((store) => store?.close());
    return this.closing;
  }

  private opened(): Promise<RecordStore> {
    this.store ??= this.load();
    return guarded('loading the driver', () => this.store!);
  }
}
