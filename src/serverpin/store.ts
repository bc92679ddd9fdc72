import type { RecordStore, StoredRecord } from '../state/records.ts';
import type { Fingerprint } from './fingerprint.ts';

export const SERVER_PIN_KIND = 'server-pin' as const;
/** Server pins do not expire. */
const NEVER = Number.MAX_SAFE_INTEGER;

/** `pinned`: it starts while it matches; `refused`: a changed fingerprint waits for `servers approve`. */
export type ServerPinStatus = 'pinned' | 'refused';

/** One stdio upstream's pin, shared by every replica and the CLI. */
export interface ServerPin {
  readonly upstream: string;
  readonly status: ServerPinStatus;
  /** What the upstream must hash to. */
  readonly pinned: Fingerprint;
  /** The last fingerprint refused, while refused. */
  readonly pending?: Fingerprint | undefined;
  /** How it was first pinned: trust on first use by a start, or `servers pin` by an operator. */
  readonly origin: 'first-use' | 'operator';
  /** Who last pinned or approved it (`operator:NAME`). */
  readonly by?: string | undefined;
  readonly firstSeenAt: number;
  readonly updatedAt: number;
}

export const serverPinOf = (rec: StoredRecord): ServerPin => rec.body as unknown as ServerPin;

const fields = (pin: ServerPin): Pick<StoredRecord, 'status' | 'matchKey' | 'expiresAt' | 'body'> => ({
  status: pin.status,
  matchKey: pin.upstream,
  expiresAt: NEVER,
  body: pin as unknown as Record<string, unknown>,
});

/** Typed access to the server pins of one record store; every change a compare-and-set. */
export class ServerPinStore {
  private readonly store: RecordStore;

  constructor(store: RecordStore) {
    this.store = store;
  }

  get(upstream: string): Promise<StoredRecord | undefined> {
    return this.store.get(SERVER_PIN_KIND, upstream);
  }

  /** False when another replica (or the CLI) stored one first. */
  insert(pin: ServerPin, now: number): Promise<boolean> {
    return this.store.insert({ kind: SERVER_PIN_KIND, id: pin.upstream, createdAt: now, ...fields(pin) });
  }

  replace(expected: StoredRecord, pin: ServerPin): Promise<StoredRecord | undefined> {
    return this.store.replace(expected, fields(pin));
  }

  async list(): Promise<ServerPin[]> {
    const recs = await this.store.find(SERVER_PIN_KIND, { status: ['pinned', 'refused'], limit: 1000 });
    return recs.map(serverPinOf);
  }
}
