import type { Logger } from '../observability/log.ts';
import { authError } from './errors.ts';
import { importKeySet, type VerifyKey } from './jwk.ts';

export interface KeySource {
  /** Fetches the current JWK Set; `maxAge` in seconds when the source said. */
  load(): Promise<{ jwks: unknown; maxAge?: number }>;
}

export interface KeyCacheOptions {
  readonly maxAgeSeconds: number;
  readonly refetchCooldownSeconds: number;
  readonly allowSymmetric: boolean;
  readonly now: () => number;
  readonly log: Logger;
  readonly label: string;
}

/**
 * An issuer's verification keys, cached for at most max-age. An unknown `kid`
 * may refetch early, but not more often than the cooldown (so a stream of
 * forged kids cannot hammer the provider). Past max-age with the provider
 * down, there are no keys: fail closed.
 *
 * Why not jose's `createRemoteJWKSet` (which verification does use `jwtVerify`
 * with): it takes no injected clock (cache age and cooldown cannot be tested
 * without waiting), ignores the provider's `Cache-Control: max-age`, and
 * imports every key as-is, where `importKeySet` refuses duplicate `kid`s,
 * private key material, ROCA-weak RSA moduli and symmetric keys unless allowed.
 */
export class KeyCache {
  private keys: readonly VerifyKey[] = [];
  private fetchedAt = Number.NEGATIVE_INFINITY;
  private expiresAt = Number.NEGATIVE_INFINITY;
  private lastAttempt = Number.NEGATIVE_INFINITY;
  private inflight: Promise<void> | undefined;
  private readonly source: KeySource;
  private readonly opts: KeyCacheOptions;

  constructor(source: KeySource, opts: KeyCacheOptions) {
    this.source = source;
    this.opts = opts;
  }

  async current(): Promise<readonly VerifyKey[]> {
    if (this.opts.now() >= this.expiresAt) await this.refresh();
    if (this.opts.now() >= this.expiresAt) throw authError('keys_unavailable', { issuer: this.opts.label });
    return this.keys;
  }

  /** Refetches for an unknown `kid`; false when the cooldown forbids it or the fetch failed. */
  async refreshForUnknownKid(): Promise<boolean> {
    const cooldown = this.opts.refetchCooldownSeconds * 1000;
    if (this.opts.now() - this.lastAttempt < cooldown) return false;
    const before = this.fetchedAt;
    await this.refresh();
    return this.fetchedAt !== before;
  }

  private refresh(): Promise<void> {
    if (!this.inflight) {
      this.inflight = this.load().finally(() => {
        this.inflight = undefined;
      });
    }
    return this.inflight;
  }

  private async load(): Promise<void> {
    this.lastAttempt = this.opts.now();
    try {
      const { jwks, maxAge } = await this.source.load();
      const set = importKeySet(jwks, { allowSymmetric: this.opts.allowSymmetric });
      if (set.dropped.length > 0)
        this.opts.log.debug('keys left out', { issuer: this.opts.label, dropped: set.dropped });
      const ttl = Math.min(maxAge ?? this.opts.maxAgeSeconds, this.opts.maxAgeSeconds) * 1000;
      this.keys = set.keys;
      this.fetchedAt = this.opts.now();
      this.expiresAt = this.fetchedAt + ttl;
    } catch (err) {
      // Keep what we have until its own max-age runs out.
      this.opts.log.warn('key refresh failed', { issuer: this.opts.label, err: String(err) });
    }
  }
}
