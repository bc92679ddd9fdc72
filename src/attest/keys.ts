import { PortcullisError } from '../errors.ts';
import { GatewayKeyDir } from '../identity/gateway-keys.ts';
import type { Logger } from '../observability/log.ts';
import { DetachedSigner, RESULT_TYP } from './detached.ts';

/**
 * How long a running gateway signs with a key before it looks again for the
 * newest: `portcullis attest rotate` reaches every replica within this.
 */
export const SIGNER_REFRESH_MS = 60_000;

/**
 * How long a gateway that cannot read its key directory keeps signing with the
 * key it has (a directory briefly out of reach), after which results are
 * withheld until it can: the key it has may be one an operator removed.
 */
export const SIGNER_GRACE_MS = 2 * SIGNER_REFRESH_MS;

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

  /** The newest key as it is now, never created: throws ERR_KEYS_UNAVAILABLE when there is none to read. */
  currentSigner(): DetachedSigner {
    const { kid, key } = this.dir.existingSigningKey();
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
 * (and whenever the clock goes back); a change of key is logged. A look that
 * finds no key to read (the directory gone, empty, unreadable) never makes
 * one: the key it has keeps signing for `SIGNER_GRACE_MS` since the last
 * good look, with an error logged, and then every result is withheld
 * (ERR_ATTESTATION_FAILED) until a look succeeds.
 */
export class CurrentSigner implements ResultSigner {
  private readonly keys: AttestationKeys;
  private readonly now: () => number;
  private readonly log: Logger;
  private signer: DetachedSigner;
  /** The last look, and the last one that read a key. */
  private lookedAt: number;
  private confirmedAt: number;

  /** Loads the newest key now (made if there is none): a directory that cannot be written stops the start. */
  constructor(keys: AttestationKeys, now: () => number, log: Logger) {
    this.keys = keys;
    this.now = now;
    this.log = log;
    this.signer = keys.signer();
    this.lookedAt = this.confirmedAt = now();
  }

  current(): DetachedSigner {
    const t = this.now();
    if (t >= this.lookedAt && t - this.lookedAt < SIGNER_REFRESH_MS) return this.signer;
    this.lookedAt = t;
    try {
      const next = this.keys.currentSigner();
      if (next.kid !== this.signer.kid)
        this.log.info('result-signing key changed', { kid: next.kid, previous: this.signer.kid });
      this.signer = next;
      this.confirmedAt = t;
      return next;
    } catch (err) {
      return this.unconfirmed(t, err);
    }
  }

  private unconfirmed(t: number, err: unknown): DetachedSigner {
    if (t >= this.confirmedAt && t - this.confirmedAt < SIGNER_GRACE_MS) {
      this.log.error('result-signing keys cannot be read; signing with the previous key for now', {
        kid: this.signer.kid,
        err: String(err),
      });
      return this.signer;
    }
    // Look again on the next call, and sign nothing until a look succeeds.
    this.lookedAt = Number.NEGATIVE_INFINITY;
    throw new PortcullisError(
      'ERR_ATTESTATION_FAILED',
      `result-signing keys cannot be read: ${String(err)}`,
      {
        cause: err,
      },
    );
  }
}
