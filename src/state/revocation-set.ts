import { keysOf, type Revocation, type RevocationSubject } from './revocations.ts';

/**
 * Revocations held in memory, looked up without I/O: the copy a replica keeps
 * of a shared store's table (see postgres-feed.ts).
 */
export class RevocationSet {
  readonly #byKey = new Map<string, Revocation>();

  get size(): number {
    return this.#byKey.size;
  }

  /** The first revocation stays, as in the table (a second revocation of the same key changes nothing). */
  add(r: Revocation): void {
    const key = keyOf(r.kind, r.value);
    if (!this.#byKey.has(key)) this.#byKey.set(key, r);
  }

  has(kind: Revocation['kind'], value: string): boolean {
    return this.#byKey.has(keyOf(kind, value));
  }

  /** The earliest revocation that matches the subject, if any (what the SQLite store answers). */
  find(subject: RevocationSubject): Revocation | undefined {
    let hit: Revocation | undefined;
    for (const k of keysOf(subject)) {
      const r = this.#byKey.get(keyOf(k.kind, k.value));
      if (r && (!hit || r.revokedAt < hit.revokedAt)) hit = r;
    }
    return hit;
  }
}

const keyOf = (kind: string, value: string) => `${kind}\u0000${value}`;
