/** What a revocation names: one token, every token of a user, or every token of a workload. */
export type RevocationKind = 'jti' | 'sub' | 'workload';

export interface Revocation {
  readonly kind: RevocationKind;
  readonly value: string;
  /** Milliseconds since the epoch. */
  readonly revokedAt: number;
  readonly reason?: string;
}

/** What is checked on every call. */
export interface RevocationSubject {
  readonly tokenId?: string;
  readonly user?: string;
  readonly workload?: string;
  /** A second workload the same caller answers to (a token's client id under mTLS). */
  readonly tokenWorkload?: string;
}

/** The longest a revocation check waits for a shared store before it fails (and the call is denied). */
export const STORE_TIMEOUT_MS = 3000;

/**
 * Revocations shared by every replica. A store that cannot answer throws:
 * the caller treats that as revoked (fail closed). A revocation is seen at
 * once by the store that wrote it; SQLite and Redis read the shared store on
 * every check, PostgreSQL checks a copy that reaches every replica within a
 * second or makes it refuse every check (see postgres-feed.ts).
 */
export interface RevocationStore {
  revoke(r: Revocation): Promise<void>;
  /** The first revocation that matches, if any. */
  find(subject: RevocationSubject): Promise<Revocation | undefined>;
  /**
   * Resolves once every revocation committed (by any writer) before the call
   * is seen by this store's checks; rejects if that cannot be confirmed.
   */
  sync(): Promise<void>;
  list(): Promise<Revocation[]>;
  close(): Promise<void>;
}

export function keysOf(subject: RevocationSubject): { kind: RevocationKind; value: string }[] {
  const out: { kind: RevocationKind; value: string }[] = [];
  if (subject.tokenId) out.push({ kind: 'jti', value: subject.tokenId });
  if (subject.user) out.push({ kind: 'sub', value: subject.user });
  if (subject.workload) out.push({ kind: 'workload', value: subject.workload });
  if (subject.tokenWorkload && subject.tokenWorkload !== subject.workload)
    out.push({ kind: 'workload', value: subject.tokenWorkload });
  return out;
}
