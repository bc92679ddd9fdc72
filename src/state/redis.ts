import { Redis, type RedisOptions } from 'ioredis';
import { type FeedChannel, type FeedOptions, RevocationFeed, revocationMessage } from './revocation-feed.ts';
import {
  type Revocation,
  type RevocationStore,
  type RevocationSubject,
  STORE_TIMEOUT_MS,
} from './revocations.ts';

export interface RedisFeedOptions extends FeedOptions {
  /** The subscribed connections' name, as `CLIENT LIST` shows it. */
  readonly connectionName?: string;
}

/** Writes the field if new and, only then, publishes it: one script, so no replica hears of a write that did not happen. */
const REVOKE = `if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('PUBLISH', ARGV[3], ARGV[4])
  return 1
end
return 0`;

/**
 * Revocations in one Redis hash (`<prefix>revocations`, field `kind:value`),
 * for replicas. Writes and `list` use one connection; checks are answered from
 * this replica's copy of the hash, kept current by SUBSCRIBE to the channel of
 * the same name (see revocation-feed.ts): no round trip per call. Only writes
 * made through a store (the gateway, the CLI) are published; a field set by
 * another tool reaches a replica at its next reload.
 */
export class RedisRevocationStore implements RevocationStore {
  private readonly redis: Redis;
  private readonly key: string;
  /** The replica's copy of the hash; its events (`live`, `down`, `applied`) say what the channel does. */
  readonly feed: RevocationFeed;

  constructor(url: string, prefix: string, options: RedisFeedOptions = {}) {
    this.redis = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      connectTimeout: 3000,
      // A server that accepts but never answers must fail a write, not hang it.
      commandTimeout: STORE_TIMEOUT_MS,
      enableOfflineQueue: true,
    });
    this.redis.on('error', () => {});
    this.key = `${prefix}revocations`;
    const name = options.connectionName ?? 'portcullis-revocations';
    this.feed = new RevocationFeed(() => subscribeChannel(url, this.key, name), options);
  }

  async revoke(r: Revocation): Promise<void> {
    const value = JSON.stringify({ revokedAt: r.revokedAt, ...(r.reason ? { reason: r.reason } : {}) });
    const field = `${r.kind}:${r.value}`;
    const added = await this.redis.eval(REVOKE, 1, this.key, field, value, this.key, revocationMessage(r));
    if (added === 1) this.feed.apply(r);
  }

  /** A lookup in memory; the first check waits for the hash to load. Fails closed when the channel is down. */
  find(subject: RevocationSubject): Promise<Revocation | undefined> {
    return this.feed.find(subject);
  }

  sync(): Promise<void> {
    return this.feed.sync();
  }

  async list(): Promise<Revocation[]> {
    return entries(await this.redis.hgetall(this.key)).sort((a, b) => a.revokedAt - b.revokedAt);
  }

  async close(): Promise<void> {
    await this.feed.close();
    this.redis.disconnect();
  }
}

/**
 * Two connections of their own, neither reconnecting by itself (the feed
 * reconnects, and reloads): one SUBSCRIBEd to `channel`, one for the load and
 * the heartbeat's PUBLISH. Redis delivers published messages in the order it
 * ran the PUBLISHes, which the heartbeat relies on.
 */
function subscribeChannel(url: string, channel: string, name: string): FeedChannel {
  const options: RedisOptions = {
    lazyConnect: true,
    connectTimeout: STORE_TIMEOUT_MS,
    commandTimeout: STORE_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    autoResubscribe: false,
    retryStrategy: () => null,
    connectionName: name,
  };
  const sub = new Redis(url, options);
  const cmd = new Redis(url, options);
  return {
    async open(onMessage, onLost) {
      for (const c of [sub, cmd]) {
        c.on('error', () => {});
        c.on('close', () => onLost(new Error('the revocation channel closed')));
      }
      sub.on('message', (_channel: string, message: string) => onMessage(message));
      await Promise.all([sub.connect(), cmd.connect()]);
      await sub.subscribe(channel);
    },
    async load() {
      return entries(await cmd.hgetall(channel));
    },
    async publish(payload) {
      await cmd.publish(channel, payload);
    },
    async close() {
      sub.disconnect();
      cmd.disconnect();
    },
  };
}

function entries(all: Record<string, string>): Revocation[] {
  return Object.entries(all).map(([field, v]) => {
    const at = field.indexOf(':');
    return parse(field.slice(0, at) as Revocation['kind'], field.slice(at + 1), v);
  });
}

function parse(kind: Revocation['kind'], value: string, raw: string): Revocation {
  const v = JSON.parse(raw) as { revokedAt: number; reason?: string };
  return { kind, value, revokedAt: v.revokedAt, ...(v.reason ? { reason: v.reason } : {}) };
}
