import { GatewayKeyDir } from '../identity/gateway-keys.ts';
import { DetachedSigner, RESULT_TYP } from './detached.ts';

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
}
