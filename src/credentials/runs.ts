import type { RecordStore, StoredRecord } from '../state/records.ts';
import { RUNS_KEY, runRecordId } from './lease-records.ts';

/**
 * Which gateway runs are alive, in the shared state store. Each run keeps a
 * record whose `expiresAt` it pushes forward on every sweep (a heartbeat); a
 * run whose record lapsed, or says it stopped, holds nothing any more, so any
 * replica may revoke the leases it left.
 *
 * Why a heartbeat and not "my own previous run": a gateway has no identity
 * that survives a restart and is unique among replicas (replicas on one host
 * share the config, the key directory and often the SQLite state file, so a
 * persisted id would be shared too, and one replica's start would revoke
 * another's live leases). A lapsed heartbeat is proof no process renews it.
 */
export class RunRegistry {
  readonly #store: RecordStore;
  readonly #ttlMs: number;
  #record: StoredRecord | undefined;

  constructor(store: RecordStore, ttlMs: number) {
    this.#store = store;
    this.#ttlMs = ttlMs;
  }

  /** Records `run` as alive until `now + ttl`. */
  async register(run: string, now: number): Promise<void> {
    const rec = {
      kind: 'lease' as const,
      id: runRecordId(run),
      status: 'running',
      matchKey: RUNS_KEY,
      createdAt: now,
      expiresAt: now + this.#ttlMs,
      body: { run },
    };
    if (!(await this.#store.insert(rec))) throw new Error(`run ${run} registered twice`);
    this.#record = { ...rec, version: 1 };
  }

  /** Pushes the heartbeat on; false when another replica declared this run dead (it must start over). */
  async renew(now: number): Promise<boolean> {
    const current = this.#record;
    if (!current) return false;
    const stored = await this.#store.replace(current, { ...current, expiresAt: now + this.#ttlMs });
    if (stored) {
      this.#record = stored;
      return true;
    }
    const fresh = await this.#store.get('lease', current.id);
    if (fresh?.status !== 'running') return false;
    this.#record = fresh;
    return this.renew(now);
  }

  /** Runs that were registered and are gone: stopped, or silent past their heartbeat. */
  async dead(now: number, self: string): Promise<StoredRecord[]> {
    const runs = await this.#store.find('lease', {
      matchKey: RUNS_KEY,
      status: ['running', 'stopped'],
      limit: 1000,
    });
    return runs.filter((r) => r.id !== runRecordId(self) && (r.status === 'stopped' || r.expiresAt <= now));
  }

  /** Marks a dead run as reaped (its leases are revoked); false when another replica did first. */
  async reaped(run: StoredRecord): Promise<boolean> {
    return (await this.#store.replace(run, { ...run, status: 'reaped' })) !== undefined;
  }

  /** A clean stop: any lease its close could not revoke is left for the next reaper. */
  async stop(): Promise<void> {
    const current = this.#record;
    if (!current) return;
    this.#record = undefined;
    await this.#store.replace(current, { ...current, status: 'stopped' });
  }
}
