import { Redis } from 'ioredis';
import { checkTime, encodeBody, findLimit, guarded, newestFirst } from './record-rules.ts';
import type { RecordKind, RecordQuery, RecordStore, StoredRecord } from './records.ts';
import { FIND, INSERT, PURGE, REPLACE } from './records-redis-scripts.ts';
import { STORE_TIMEOUT_MS } from './revocations.ts';

/** How many expired records one purge script deletes before handing Redis back to other clients. */
const PURGE_BATCH = 500;

type Script = (...args: (string | number)[]) => Promise<unknown>;

/**
 * Records in Redis, for replicas: a hash per record and sorted-set indexes,
 * changed only by Lua scripts (see records-redis-scripts.ts) so each change is
 * atomic. Keys live under `<prefix>{records}:`.
 */
export class RedisRecordStore implements RecordStore {
  private readonly redis: Redis;
  private readonly base: string;
  private readonly scripts: Record<'insert' | 'replace' | 'purge' | 'find', Script>;

  constructor(url: string, prefix: string) {
    this.redis = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      connectTimeout: 3000,
      // A server that accepts but never answers must fail the call (closed), not hang it.
      commandTimeout: STORE_TIMEOUT_MS,
      enableOfflineQueue: true,
      // A call waits for the next reconnect attempt: keep that short, so a server that is down fails calls quickly.
      retryStrategy: (attempt) => Math.min(attempt * 50, 500),
    });
    this.redis.on('error', () => {});
    // The hash tag puts every record key in one cluster slot, as multi-key scripts need.
    this.base = `${prefix}{records}:`;
    const define = (name: string, lua: string): Script => {
      this.redis.defineCommand(`records_${name}`, { lua, numberOfKeys: 0 });
      const command = (this.redis as unknown as Record<string, Script>)[`records_${name}`]!;
      return command.bind(this.redis);
    };
    this.scripts = {
      insert: define('insert', INSERT),
      replace: define('replace', REPLACE),
      purge: define('purge', PURGE),
      find: define('find', FIND),
    };
  }

  async insert(record: Omit<StoredRecord, 'version'>): Promise<boolean> {
    const body = encodeBody(record);
    return guarded('insert', async () => {
      const { kind, id, status, matchKey, createdAt, expiresAt } = record;
      const stored = await this.scripts.insert(
        this.base,
        kind,
        id,
        status,
        matchKey,
        createdAt,
        expiresAt,
        body,
      );
      return stored === 1;
    });
  }

  async get(kind: RecordKind, id: string): Promise<StoredRecord | undefined> {
    return guarded('get', async () => fromHash(kind, id, await this.redis.hgetall(this.key(kind, id))));
  }

  async getMany(kind: RecordKind, ids: readonly string[]): Promise<StoredRecord[]> {
    const unique = [...new Set(ids)];
    if (unique.length === 0) return [];
    return guarded('getMany', async () => {
      const pipeline = this.redis.pipeline();
      for (const id of unique) pipeline.hgetall(this.key(kind, id));
      const replies = (await pipeline.exec()) ?? [];
      return unique.flatMap((id, i) => {
        const [err, hash] = replies[i] ?? [new Error('no reply')];
        if (err) throw err;
        return fromHash(kind, id, hash as Record<string, string>) ?? [];
      });
    });
  }

  async find(kind: RecordKind, query: RecordQuery): Promise<StoredRecord[]> {
    const limit = findLimit(query);
    if (query.status?.length === 0) return [];
    return guarded('find', async () => {
      const hasMatch = query.matchKey !== undefined;
      const flat = (await this.scripts.find(
        this.base,
        kind,
        limit,
        query.matchKey ?? '',
        hasMatch ? '1' : '0',
        ...(query.status ?? []),
      )) as string[];
      const found: StoredRecord[] = [];
      for (let i = 0; i < flat.length; i += 7) {
        const [id, version, status, matchKey, createdAt, expiresAt, body] = flat.slice(i, i + 7) as string[];
        found.push(toRecord(kind, id!, { version, status, matchKey, createdAt, expiresAt, body }));
      }
      return found.sort(newestFirst).slice(0, limit);
    });
  }

  async replace(
    expected: StoredRecord,
    change: Pick<StoredRecord, 'status' | 'matchKey' | 'expiresAt' | 'body'>,
  ): Promise<StoredRecord | undefined> {
    const body = encodeBody({ ...change, id: expected.id });
    return guarded('replace', async () => {
      const { kind, id, version } = expected;
      const { status, matchKey, expiresAt } = change;
      const createdAt = (await this.scripts.replace(
        this.base,
        kind,
        id,
        String(version),
        status,
        matchKey,
        expiresAt,
        body,
      )) as string | null;
      if (createdAt === null) return undefined;
      return {
        kind,
        id,
        version: version + 1,
        status,
        matchKey,
        createdAt: Number(createdAt),
        expiresAt,
        body: JSON.parse(body),
      };
    });
  }

  async purgeExpired(before: number): Promise<number> {
    checkTime('before', before);
    return guarded('purgeExpired', async () => {
      let total = 0;
      for (;;) {
        const gone = (await this.scripts.purge(this.base, `(${before}`, PURGE_BATCH)) as number;
        total += gone;
        if (gone < PURGE_BATCH) return total;
      }
    });
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }

  private key(kind: RecordKind, id: string): string {
    return `${this.base}${kind}:id:${id}`;
  }
}

function fromHash(kind: RecordKind, id: string, hash: Record<string, string>): StoredRecord | undefined {
  return hash.version === undefined ? undefined : toRecord(kind, id, hash);
}

function toRecord(kind: RecordKind, id: string, h: Record<string, string | undefined>): StoredRecord {
  return {
    kind,
    id,
    version: Number(h.version),
    status: h.status!,
    matchKey: h.matchKey!,
    createdAt: Number(h.createdAt),
    expiresAt: Number(h.expiresAt),
    body: JSON.parse(h.body!) as Record<string, unknown>,
  };
}
