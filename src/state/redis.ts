import { Redis } from 'ioredis';
import {
  keysOf,
  type Revocation,
  type RevocationStore,
  type RevocationSubject,
  STORE_TIMEOUT_MS,
} from './revocations.ts';

/** Revocations in one Redis hash (`<prefix>revocations`, field `kind:value`), for replicas. */
export class RedisRevocationStore implements RevocationStore {
  private readonly redis: Redis;
  private readonly key: string;

  constructor(url: string, prefix: string) {
    this.redis = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      connectTimeout: 3000,
      // A server that accepts but never answers must deny calls, not hang them.
      commandTimeout: STORE_TIMEOUT_MS,
      enableOfflineQueue: true,
    });
    this.redis.on('error', () => {});
    this.key = `${prefix}revocations`;
  }

  async revoke(r: Revocation): Promise<void> {
    const value = JSON.stringify({ revokedAt: r.revokedAt, ...(r.reason ? { reason: r.reason } : {}) });
    await this.redis.hsetnx(this.key, `${r.kind}:${r.value}`, value);
  }

  async find(subject: RevocationSubject): Promise<Revocation | undefined> {
    const keys = keysOf(subject);
    if (keys.length === 0) return undefined;
    const values = await this.redis.hmget(this.key, ...keys.map((k) => `${k.kind}:${k.value}`));
    const i = values.findIndex((v) => v !== null);
    return i < 0 ? undefined : parse(keys[i]!.kind, keys[i]!.value, values[i]!);
  }

  /** Every check reads the hash: nothing to wait for. */
  async sync(): Promise<void> {}

  async list(): Promise<Revocation[]> {
    const all = await this.redis.hgetall(this.key);
    return Object.entries(all)
      .map(([field, v]) => {
        const at = field.indexOf(':');
        return parse(field.slice(0, at) as Revocation['kind'], field.slice(at + 1), v);
      })
      .sort((a, b) => a.revokedAt - b.revokedAt);
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

function parse(kind: Revocation['kind'], value: string, raw: string): Revocation {
  const v = JSON.parse(raw) as { revokedAt: number; reason?: string };
  return { kind, value, revokedAt: v.revokedAt, ...(v.reason ? { reason: v.reason } : {}) };
}
