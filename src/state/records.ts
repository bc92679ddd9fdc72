/**
 * Small versioned records shared by every replica through the state store:
 * approvals, break-glass windows, webhook nonces, tool pins, server pins. A store keeps each as an
 * opaque JSON body beside the few columns it is looked up by; every change is
 * a compare-and-set on `version`, so two replicas (or a replica and the CLI)
 * racing on one record cannot both win.
 */
export type RecordKind = 'approval' | 'breakglass' | 'nonce' | 'pin' | 'lease' | 'server-pin';

export interface StoredRecord {
  readonly kind: RecordKind;
  /** Unique within its kind. */
  readonly id: string;
  /** 1 on insert; each successful `replace` stores `version + 1`. */
  readonly version: number;
  /** Free text the domain defines (`pending`, `granted`, `open`, …); indexed. */
  readonly status: string;
  /** What a lookup matches on besides status (an approval's principal, tool and argument hash); indexed. */
  readonly matchKey: string;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  /** Milliseconds since the epoch; `purgeExpired` removes records this far past it. */
  readonly expiresAt: number;
  /** The domain's own JSON object. */
  readonly body: Readonly<Record<string, unknown>>;
}

export interface RecordQuery {
  readonly status?: readonly string[];
  readonly matchKey?: string;
  /** At most this many, newest first (by `createdAt`, then `id`). Default 100, at most 1000. */
  readonly limit?: number;
}

/**
 * A store that cannot answer throws `ERR_STATE_UNAVAILABLE` (a `PortcullisError`):
 * callers fail closed (a held call is denied, never forwarded).
 */
export interface RecordStore {
  /** Stores a new record at version 1; false (and nothing written) when one of that kind and id exists. */
  insert(record: Omit<StoredRecord, 'version'>): Promise<boolean>;
  get(kind: RecordKind, id: string): Promise<StoredRecord | undefined>;
  /** Several at once (a poll of every held call); missing ids are left out. */
  getMany(kind: RecordKind, ids: readonly string[]): Promise<StoredRecord[]>;
  find(kind: RecordKind, query: RecordQuery): Promise<StoredRecord[]>;
  /**
   * Replaces the record when its stored version is `expected`, storing
   * `expected + 1`; returns the stored record, or undefined when the version
   * moved on or the record is gone (nothing written).
   */
  replace(
    expected: StoredRecord,
    change: Pick<StoredRecord, 'status' | 'matchKey' | 'expiresAt' | 'body'>,
  ): Promise<StoredRecord | undefined>;
  /** Deletes records whose `expiresAt` is before `before`; returns how many. */
  purgeExpired(before: number): Promise<number>;
  close(): Promise<void>;
}
