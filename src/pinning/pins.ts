import { PortcullisError } from '../errors.ts';
import type { RecordStore, StoredRecord } from '../state/records.ts';
import type { Finding } from './scanner.ts';

/**
 * Tool pins in the shared state store: one record per upstream tool
 * (`UPSTREAM/TOOL`) and per server's instructions (`UPSTREAM/#instructions`),
 * so every replica and the CLI see one pin. Every change is a compare-and-set.
 */
export const PIN_KIND = 'pin' as const;
export const INSTRUCTIONS = '#instructions';
/** Pins do not expire. */
const NEVER = Number.MAX_SAFE_INTEGER;
/** A body this large keeps the hashes but not the definitions (the store's limit is 64 KiB). */
const MAX_KEPT_DEFINITIONS = 48 * 1024;

export type PinStatus = 'pinned' | 'quarantined';

/** One definition of a tool (or a server's instructions) as seen, with what the scanner found in it. */
export interface PinVersion {
  readonly hash: string;
  /** Undefined when the definitions were too large to keep beside the hashes. */
  readonly definition?: unknown;
  readonly score: number;
  readonly findings: readonly Finding[];
  readonly seenAt: number;
}

export interface Pin {
  readonly upstream: string;
  /** The upstream's own tool name, or `#instructions`. */
  readonly tool: string;
  readonly status: PinStatus;
  /** The accepted definition: what a tool must list to be shown (once pinned). */
  readonly current: PinVersion;
  /** A changed definition waiting for an operator's approval. */
  readonly pending?: PinVersion;
  /** Why it is quarantined: `changed`, `poisoning`, or an operator's reason. */
  readonly reason: string;
  /** Who last approved or quarantined it (`operator:NAME`). */
  readonly by?: string;
  readonly firstSeenAt: number;
  readonly updatedAt: number;
}

export const pinId = (upstream: string, tool: string): string => `${upstream}/${tool}`;

export const pinOf = (rec: StoredRecord): Pin => rec.body as unknown as Pin;

/** The record fields for a pin; the definitions are left out when they would not fit. */
export function pinRecord(pin: Pin): Pick<StoredRecord, 'status' | 'matchKey' | 'expiresAt' | 'body'> {
  let body = pin;
  if (JSON.stringify(body).length > MAX_KEPT_DEFINITIONS) {
    const hashOnly = ({ definition: _, ...rest }: PinVersion): PinVersion => rest;
    body = {
      ...pin,
      current: hashOnly(pin.current),
      ...(pin.pending ? { pending: hashOnly(pin.pending) } : {}),
    };
  }
  return {
    status: pin.status,
    matchKey: pin.upstream,
    expiresAt: NEVER,
    body: body as unknown as Record<string, unknown>,
  };
}

/** Typed access to the pin records of one store. */
export class PinStore {
  readonly store: RecordStore;

  constructor(store: RecordStore) {
    this.store = store;
  }

  get(upstream: string, tool: string): Promise<StoredRecord | undefined> {
    return this.store.get(PIN_KIND, pinId(upstream, tool));
  }

  getMany(ids: readonly string[]): Promise<StoredRecord[]> {
    return this.store.getMany(PIN_KIND, ids);
  }

  /** Stores a first pin; false when another replica stored one first. */
  insert(pin: Pin, now: number): Promise<boolean> {
    return this.store.insert({
      kind: PIN_KIND,
      id: pinId(pin.upstream, pin.tool),
      createdAt: now,
      ...pinRecord(pin),
    });
  }

  /** The stored record, or undefined when its version moved on (another replica or the CLI changed it). */
  replace(expected: StoredRecord, pin: Pin): Promise<StoredRecord | undefined> {
    return this.store.replace(expected, pinRecord(pin));
  }

  /** Every pin in a state (at most 1000 of each, newest first). */
  async list(statuses: readonly PinStatus[] = ['pinned', 'quarantined']): Promise<StoredRecord[]> {
    return this.store.find(PIN_KIND, { status: statuses, limit: 1000 });
  }
}

/** Ran out of compare-and-set tries: others keep changing this pin. The caller fails closed. */
export const pinContended = (id: string): PortcullisError =>
  new PortcullisError('ERR_STATE_UNAVAILABLE', `pin ${id}: changed concurrently too often`);
