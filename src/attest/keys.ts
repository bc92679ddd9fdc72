import { GatewayKeyDir } from '../identity/gateway-keys.ts';
import type { Logger } from '../observability/log.ts';
import { DetachedSigner, RESULT_TYP } from './detached.ts';

/**
 * How long a running gateway signs with a key before it looks again for the
 * newest: `portcullis attest rotate` reaches every replica within this.
 */
export const SIGNER_REFRESH_MS = 60_000;

/**
 * The Ed25519 keys that sign results, in a key directory of their own (the
 * gateway token keys' format). Separate from the token keys: those retire
 * and are deleted an hour after rotation, while an attestation is evidence
 * that must stay verifiable, so these keys stay published until removed by hand.
 */
export class AttestationKeys {
  private readonly dir: GatewayKeyDir;

  constructor(dir: string, now: () => number = Date.now) {
    this.dir = new GatewayKeyDir(dir, now);
  }

  /** The newest key (created on first use), parsed once: throws ERR_KEYS_UNAVAILABLE when it cannot be written. */
  signer(): DetachedSigner {
    const { kid, key } = this.dir.signingKey();
    return new DetachedSigner(key, kid, RESULT_TYP);
  }

  /** Every key in the directory, retired or not, as public JWKs. */
  jwks(): { keys: Record<string, unknown>[] } {
    return this.dir.jwks(Number.POSITIVE_INFINITY);
  }

  /**
   * A new signing key; the one signing until now retires, and stays published
   * (what it signed must still verify). No key is deleted.
   */
  rotate(): { kid: string; retired: string[] } {
    const { kid, retired } = this.dir.rotate(Number.POSITIVE_INFINITY);
    return { kid, retired };
  }
}

/** What the attest stage signs with: the signer of the moment. */
export interface ResultSigner {
  current(): DetachedSigner;
}

/**
 * The newest key's signer, looked up again at most every `SIGNER_REFRESH_MS`
 * (and whenever the clock goes back). A directory that cannot be read then
 * leaves the previous key signing, still published and valid, and says so.
 */
export class CurrentSigner implements ResultSigner {
  private readonly keys: AttestationKeys;
  private readonly now: () => number;
  private readonly log: Logger;
  private signer: DetachedSigner;
  private loadedAt: number;

  /** Loads the newest key now: a directory that cannot be written stops the start. */
  constructor(keys: AttestationKeys, now: () => number, log: Logger) {
    this.keys = keys;
    this.now = now;
    this.log = log;
    this.signer = keys.signer();
    this.loadedAt = now();
  }

  current(): DetachedSigner {
    const t = this.now();
    if (t >= this.loadedAt && t - this.loadedAt < SIGNER_REFRESH_MS) return this.signer;
    this.loadedAt = t;
    try {
      this.signer = this.keys.signer();
    } catch (err) {
      this.log.warn('result-signing keys not read again; signing with the previous key', {
        kid: this.signer.kid,
        err: String(err),
      });
    }
    return this.signer;
  }
}
