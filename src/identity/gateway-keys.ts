import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomUUID,
} from 'node:crypto';
import { chmodSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PortcullisError } from '../errors.ts';
import { makePrivateDir } from '../private-files.ts';
import { isRecord } from './jwk.ts';

/** One signing key in the key directory, as stored (`<kid>.json`, mode 0600). */
interface StoredKey {
  kid: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
  /** Set when a newer key took over; the key still verifies for one token lifetime. */
  retiredAt?: number;
  privateJwk: Record<string, unknown>;
}

export interface SigningKey {
  readonly kid: string;
  readonly key: KeyObject;
}

const KID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The gateway's own Ed25519 keys in a directory. `rotate` adds a key and
 * retires the current one; retired keys stay published until every token they
 * could have signed has expired (the overlap), then are deleted.
 */
export class GatewayKeyDir {
  readonly dir: string;
  private readonly now: () => number;

  constructor(dir: string, now: () => number = Date.now) {
    this.dir = dir;
    this.now = now;
  }

  /** The stored keys, oldest first; `strict`: a directory that cannot be read throws instead of holding none. */
  private read(strict = false): StoredKey[] {
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((n) => n.endsWith('.json'));
    } catch (err) {
      if (strict)
        throw new PortcullisError('ERR_KEYS_UNAVAILABLE', `cannot read key directory ${this.dir}`, {
          cause: err,
        });
      return [];
    }
    const keys: StoredKey[] = [];
    for (const name of names) {
      const parsed = JSON.parse(readFileSync(join(this.dir, name), 'utf8')) as unknown;
      if (
        isRecord(parsed) &&
        typeof parsed.kid === 'string' &&
        KID.test(parsed.kid) &&
        isRecord(parsed.privateJwk)
      )
        keys.push(parsed as unknown as StoredKey);
    }
    return keys.sort((a, b) => a.createdAt - b.createdAt);
  }

  /** The newest key that is not retired; created on first use. */
  signingKey(): SigningKey {
    const active = this.read().filter((k) => k.retiredAt === undefined);
    const newest = active.at(-1) ?? this.create();
    return { kid: newest.kid, key: createPrivateKey({ key: newest.privateJwk as never, format: 'jwk' }) };
  }

  /**
   * The newest key that is not retired, never created: throws
   * ERR_KEYS_UNAVAILABLE when the directory cannot be read or holds none (a
   * volume not mounted), where a new key would be published nowhere else.
   */
  existingSigningKey(): SigningKey {
    const newest = this.read(true)
      .filter((k) => k.retiredAt === undefined)
      .at(-1);
    if (!newest) throw new PortcullisError('ERR_KEYS_UNAVAILABLE', `no signing key in ${this.dir}`);
    return { kid: newest.kid, key: createPrivateKey({ key: newest.privateJwk as never, format: 'jwk' }) };
  }

  /**
   * Whether key `kid` could have signed a token issued at `iatSeconds`: an
   * active key could; a retired one only before it retired (a token minted
   * with it later came from whoever kept a copy); a deleted or unknown one never.
   */
  couldHaveSigned(kid: string, iatSeconds: number): boolean {
    const key = this.read().find((k) => k.kid === kid);
    if (!key) return false;
    return key.retiredAt === undefined || iatSeconds * 1000 <= key.retiredAt;
  }

  /** Public keys of every key still inside its overlap window. */
  jwks(overlapSeconds: number): { keys: Record<string, unknown>[] } {
    const cutoff = this.now() - overlapSeconds * 1000;
    const keys = this.read()
      .filter((k) => k.retiredAt === undefined || k.retiredAt > cutoff)
      .map((k) => {
        const pub = createPublicKey({ key: k.privateJwk as never, format: 'jwk' }).export({ format: 'jwk' });
        return { ...pub, kid: k.kid, alg: 'EdDSA', use: 'sig' };
      });
    return { keys };
  }

  /** A new signing key; the previous ones retire now, and keys past their overlap are deleted. */
  rotate(overlapSeconds: number): { kid: string; retired: string[]; deleted: string[] } {
    const existing = new Set(this.read().map((k) => k.kid));
    const fresh = this.create();
    const retired: string[] = [];
    const deleted: string[] = [];
    const cutoff = this.now() - overlapSeconds * 1000;
    // Read again after the new key is written, and keys made since by another rotation retired only when
    // older: of two rotations run at once, the later key stays active alone.
    const older = (k: StoredKey) =>
      existing.has(k.kid) ||
      k.createdAt < fresh.createdAt ||
      (k.createdAt === fresh.createdAt && k.kid < fresh.kid);
    for (const k of this.read().filter(older)) {
      if (k.retiredAt === undefined) {
        this.write({ ...k, retiredAt: this.now() });
        retired.push(k.kid);
      } else if (k.retiredAt <= cutoff) {
        rmSync(join(this.dir, `${k.kid}.json`), { force: true });
        deleted.push(k.kid);
      }
    }
    return { kid: fresh.kid, retired, deleted };
  }

  private create(): StoredKey {
    const { privateKey } = generateKeyPairSync('ed25519');
    const stored: StoredKey = {
      kid: randomUUID(),
      createdAt: this.now(),
      privateJwk: privateKey.export({ format: 'jwk' }) as Record<string, unknown>,
    };
    this.write(stored);
    return stored;
  }

  private write(k: StoredKey): void {
    try {
      makePrivateDir(this.dir);
      const tmp = join(this.dir, `.${k.kid}.${process.pid}.tmp`);
      writeFileSync(tmp, JSON.stringify(k), { mode: 0o600 });
      chmodSync(tmp, 0o600);
      renameSync(tmp, join(this.dir, `${k.kid}.json`));
    } catch (err) {
      throw new PortcullisError('ERR_KEYS_UNAVAILABLE', `cannot write key directory ${this.dir}`, {
        cause: err,
      });
    }
  }
}
