import type { Revocation, RevocationStore, RevocationSubject } from './revocations.ts';

/**
 * A revocation store whose driver loads on first use, so a gateway configured
 * for SQLite never loads `pg` or `ioredis`. A driver that fails to load fails
 * every call on the store, which the caller treats as revoked (fail closed).
 */
export class DeferredRevocationStore implements RevocationStore {
  private readonly load: () => Promise<RevocationStore>;
  private store: Promise<RevocationStore> | undefined;

  constructor(load: () => Promise<RevocationStore>) {
    this.load = load;
  }

  async revoke(r: Revocation): Promise<void> {
    return (await this.opened()).revoke(r);
  }

  async find(subject: RevocationSubject): Promise<Revocation | undefined> {
    return (await this.opened()).find(subject);
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
    this.store ??= this.load();
    return this.store;
  }
}
