import pg from 'pg';
import { type NamedStatement, namedStatement } from '../pg-statement.ts';
import { CompactRange } from './merkle.ts';
import {
  type AppendItem,
  type AppendOptions,
  type AuditStore,
  type CommitSync,
  decodeRange,
  type EntryMeta,
  encodeRange,
  extend,
  type StoredCheckpoint,
  type StoredCosignature,
  type StoredEntry,
  type StoredLeaf,
  type TreeHead,
} from './store.ts';

const schema = (t: string): string => `
CREATE TABLE IF NOT EXISTS ${t}_head (id INT PRIMARY KEY CHECK (id = 1), size BIGINT NOT NULL, range TEXT NOT NULL, root BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS ${t}_entries (idx BIGINT PRIMARY KEY, leaf BYTEA NOT NULL, kind TEXT NOT NULL, call_id TEXT NOT NULL,
  principal TEXT NOT NULL, tool TEXT NOT NULL, decision TEXT NOT NULL, session TEXT NOT NULL, time BIGINT NOT NULL, root_after BYTEA NOT NULL);
CREATE INDEX IF NOT EXISTS ${t}_entries_principal ON ${t}_entries (principal, time);
CREATE INDEX IF NOT EXISTS ${t}_entries_session ON ${t}_entries (session);
CREATE TABLE IF NOT EXISTS ${t}_checkpoints (size BIGINT PRIMARY KEY, note TEXT NOT NULL, range TEXT);
ALTER TABLE ${t}_checkpoints ADD COLUMN IF NOT EXISTS range TEXT;
CREATE TABLE IF NOT EXISTS ${t}_blobs (hash TEXT PRIMARY KEY, data BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS ${t}_cosignatures (size BIGINT NOT NULL, witness TEXT NOT NULL, line TEXT NOT NULL, PRIMARY KEY (size, witness));
CREATE OR REPLACE FUNCTION ${t}_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit log is append-only'; END $$;
CREATE OR REPLACE FUNCTION ${t}_no_shrink() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN IF NEW.size < OLD.size THEN RAISE EXCEPTION 'audit log is append-only'; END IF; RETURN NEW; END $$;
CREATE OR REPLACE TRIGGER ${t}_entries_append_only BEFORE UPDATE OR DELETE ON ${t}_entries FOR EACH ROW EXECUTE FUNCTION ${t}_refuse();
CREATE OR REPLACE TRIGGER ${t}_entries_no_truncate BEFORE TRUNCATE ON ${t}_entries FOR EACH STATEMENT EXECUTE FUNCTION ${t}_refuse();
CREATE OR REPLACE TRIGGER ${t}_checkpoints_append_only BEFORE UPDATE OR DELETE ON ${t}_checkpoints FOR EACH ROW EXECUTE FUNCTION ${t}_refuse();
CREATE OR REPLACE TRIGGER ${t}_checkpoints_no_truncate BEFORE TRUNCATE ON ${t}_checkpoints FOR EACH STATEMENT EXECUTE FUNCTION ${t}_refuse();
CREATE OR REPLACE TRIGGER ${t}_blobs_append_only BEFORE UPDATE OR DELETE ON ${t}_blobs FOR EACH ROW EXECUTE FUNCTION ${t}_refuse();
CREATE OR REPLACE TRIGGER ${t}_cosignatures_append_only BEFORE UPDATE OR DELETE ON ${t}_cosignatures FOR EACH ROW EXECUTE FUNCTION ${t}_refuse();
CREATE OR REPLACE TRIGGER ${t}_head_no_delete BEFORE DELETE ON ${t}_head FOR EACH ROW EXECUTE FUNCTION ${t}_refuse();
CREATE OR REPLACE TRIGGER ${t}_head_no_shrink BEFORE UPDATE ON ${t}_head FOR EACH ROW EXECUTE FUNCTION ${t}_no_shrink();
CREATE OR REPLACE FUNCTION ${t}_append(expected BIGINT, expected_root BYTEA, next_size BIGINT, next_range TEXT, next_root BYTEA,
  idxs BIGINT[], leaves BYTEA[], kinds TEXT[], call_ids TEXT[], principals TEXT[], tools TEXT[], decisions TEXT[],
  sessions TEXT[], times BIGINT[], roots BYTEA[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  UPDATE ${t}_head SET size = next_size, range = next_range, root = next_root
    WHERE id = 1 AND size = expected AND root = expected_root;
  IF NOT FOUND THEN RAISE EXCEPTION 'tree head moved' USING ERRCODE = '40001'; END IF;
  INSERT INTO ${t}_entries (idx, leaf, kind, call_id, principal, tool, decision, session, time, root_after)
    SELECT * FROM unnest(idxs, leaves, kinds, call_ids, principals, tools, decisions, sessions, times, roots);
END $$;
INSERT INTO ${t}_head (id, size, range, root) VALUES (1, 0, '', '\\x${new CompactRange().root().toString('hex')}') ON CONFLICT DO NOTHING;
`;

const TABLE = /^[a-z_][a-z0-9_]{0,40}$/;

type SyncLevel = 'on' | 'remote_write' | 'remote_apply';

/**
 * The level a synced commit asks for: at least the local WAL flush (`on`),
 * and the server's configured level where that asks for replicas too. A
 * server configured `off` or `local` still gets `on`: the log's guarantee
 * is not the server's to weaken.
 */
async function syncLevelOf(client: pg.PoolClient): Promise<SyncLevel> {
  const { rows } = await client.query("SELECT reset_val FROM pg_settings WHERE name = 'synchronous_commit'");
  const level = String(rows[0]?.reset_val ?? 'on');
  return level === 'remote_write' || level === 'remote_apply' ? level : 'on';
}

/** PostgreSQL store: the head row is locked (`FOR UPDATE`) for the whole append, so replicas take turns. */
export class PgAuditStore implements AuditStore {
  private readonly pool: pg.Pool;
  private readonly t: string;
  /** The head as this writer last left it, with its root: the next append assumes it (one round trip) and checks it. */
  private last: { range: CompactRange; root: Buffer } | undefined;
  private readonly appendStatement: NamedStatement;
  /** The same append, its transaction committed synchronously (set_config is local to it): one round trip still. */
  private readonly appendSyncStatement: NamedStatement;

  private readonly commitSync: CommitSync;
  /** How a synced commit waits: the server's own level where it asks for more than the local flush (replicas). */
  private readonly syncLevel: SyncLevel;

  private constructor(pool: pg.Pool, table: string, commitSync: CommitSync, syncLevel: SyncLevel) {
    this.pool = pool;
    this.commitSync = commitSync;
    this.t = table;
    this.syncLevel = syncLevel;
    const text = `SELECT ${table}_append(${Array.from({ length: 15 }, (_, k) => `$${k + 1}`).join(',')})`;
    this.appendStatement = namedStatement(text);
    this.appendSyncStatement = namedStatement(
      `${text}, set_config('synchronous_commit', '${syncLevel}', true)`,
    );
  }

  static async open(url: string, table: string, commitSync: CommitSync = 'each'): Promise<PgAuditStore> {
    if (!TABLE.test(table)) throw new Error(`invalid audit table prefix ${table}`);
    // Bounded waits: a database that does not answer must deny calls, not hang them.
    const pool = new pg.Pool({
      connectionString: url,
      max: 4,
      connectionTimeoutMillis: 5000,
      query_timeout: 10_000,
    });
    pool.on('error', () => {});
    // Deferred: a commit is in PostgreSQL (a crash of the gateway keeps it) and on its disk at the next `sync()`.
    if (commitSync === 'deferred')
      pool.on('connect', (client) => void client.query('SET synchronous_commit TO off').catch(() => {}));
    let store: PgAuditStore;
    try {
      const client = await pool.connect();
      try {
        store = new PgAuditStore(pool, table, commitSync, await syncLevelOf(client));
        // Serialise schema creation across replicas starting together.
        await client.query('SELECT pg_advisory_lock(hashtext($1))', [table]);
        await client.query(schema(table));
        await client.query('SELECT pg_advisory_unlock(hashtext($1))', [table]);
      } finally {
        client.release();
      }
    } catch (err) {
      await pool.end();
      throw err;
    }
    return store;
  }

  /**
   * One round trip when this writer's view of the head is current: a single
   * statement (its own transaction) moves the head from the size it expects
   * and inserts the entries, or fails whole. Another writer having moved the
   * head meanwhile makes it fail; then the locked path reads the head afresh.
   */
  async append(
    items: readonly AppendItem[],
    opts: AppendOptions = {},
  ): Promise<TreeHead & { first: number }> {
    const last = this.last;
    const sync = opts.sync === true && this.commitSync === 'deferred';
    if (!last || items.some((item) => item.blobs.length > 0)) return this.appendLocked(items, sync);
    const { next, roots, root } = extend(last.range, items);
    const client = await this.pool.connect();
    try {
      // The head must be the one this writer left, by size and by root: a head rolled back and
      // regrown elsewhere (a failover, a restore) has the size but not the root, and takes the locked path.
      await client.query({
        ...(sync ? this.appendSyncStatement : this.appendStatement),
        values: [
          last.range.size,
          last.root,
          next.size,
          encodeRange(next),
          root,
          items.map((_, i) => last.range.size + i),
          ...columns(items),
          roots,
        ],
      });
    } catch (err) {
      this.last = undefined;
      const code = (err as { code?: string }).code;
      // Another writer moved the head: an expected outcome, so the connection is kept.
      if (code === '40001' || code === '23505') {
        client.release();
        return this.appendLocked(items, sync);
      }
      client.release(err as Error);
      throw err;
    }
    client.release();
    this.last = { range: next, root };
    return { first: last.range.size, size: next.size, root };
  }

  /** Locks the head row, reads it, appends after it: the path when the head is unknown or moved. */
  private async appendLocked(
    items: readonly AppendItem[],
    sync: boolean,
  ): Promise<TreeHead & { first: number }> {
    const client = await this.pool.connect();
    try {
      await client.query(sync ? `BEGIN; SET LOCAL synchronous_commit TO ${this.syncLevel}` : 'BEGIN');
      const { rows } = await client.query(`SELECT size, range FROM ${this.t}_head WHERE id = 1 FOR UPDATE`);
      const size = Number(rows[0].size);
      const { next, roots, root } = extend(decodeRange(size, rows[0].range as string), items);
      for (const item of items) {
        for (const b of item.blobs) {
          await client.query(
            `INSERT INTO ${this.t}_blobs (hash, data) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
            [b.hash, b.data],
          );
        }
      }
      const values: unknown[] = [];
      const tuples = items.map((item, i) => {
        const m = item.meta;
        values.push(
          size + i,
          item.leaf,
          m.kind,
          m.callId,
          m.principal,
          m.tool,
          m.decision,
          m.session,
          m.time,
          roots[i],
        );
        const o = i * 10;
        return `(${Array.from({ length: 10 }, (_, k) => `$${o + k + 1}`).join(',')})`;
      });
      await client.query(
        `INSERT INTO ${this.t}_entries (idx, leaf, kind, call_id, principal, tool, decision, session, time, root_after) VALUES ${tuples.join(',')}`,
        values,
      );
      const moved = await client.query(
        `UPDATE ${this.t}_head SET size = $1, range = $2, root = $3 WHERE id = 1 AND size = $4`,
        [next.size, encodeRange(next), root, size],
      );
      if (moved.rowCount !== 1) throw new Error('tree head moved under the writer lock');
      await client.query('COMMIT');
      this.last = { range: next, root };
      return { first: size, size: next.size, root };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async head(): Promise<TreeHead> {
    const { rows } = await this.pool.query(`SELECT size, root FROM ${this.t}_head WHERE id = 1`);
    return { size: Number(rows[0].size), root: rows[0].root as Buffer };
  }

  async entries(from: number, to: number): Promise<StoredEntry[]> {
    const { rows } = await this.pool.query(
      `SELECT idx, leaf, root_after, kind, call_id, principal, tool, decision, session, time
        FROM ${this.t}_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx`,
      [from, to],
    );
    return rows.map(toEntry);
  }

  async entriesFrom(from: number, limit: number): Promise<StoredEntry[]> {
    const { rows } = await this.pool.query(
      `SELECT idx, leaf, root_after, kind, call_id, principal, tool, decision, session, time
        FROM ${this.t}_entries WHERE idx >= $1 ORDER BY idx LIMIT $2`,
      [from, limit],
    );
    return rows.map(toEntry);
  }

  async leaves(from: number, to: number): Promise<StoredLeaf[]> {
    const { rows } = await this.pool.query(
      `SELECT idx, leaf FROM ${this.t}_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx`,
      [from, to],
    );
    return rows.map((r) => ({ index: Number(r.idx), leaf: r.leaf as Buffer }));
  }

  async addCheckpoint(c: StoredCheckpoint): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.t}_checkpoints (size, note, range) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
      [c.size, c.note, c.range ?? null],
    );
  }

  async latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    const { rows } = await this.pool.query(
      `SELECT size, note, range FROM ${this.t}_checkpoints ORDER BY size DESC LIMIT 1`,
    );
    const r = rows[0];
    if (!r) return undefined;
    return {
      size: Number(r.size),
      note: r.note as string,
      ...(r.range === null ? {} : { range: r.range as string }),
    };
  }

  async checkpoints(): Promise<StoredCheckpoint[]> {
    const { rows } = await this.pool.query(`SELECT size, note FROM ${this.t}_checkpoints ORDER BY size`);
    return rows.map((r) => ({ size: Number(r.size), note: r.note as string }));
  }

  async addCosignature(c: StoredCosignature): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.t}_cosignatures (size, witness, line) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
      [c.size, c.witness, c.line],
    );
  }

  async cosignatures(size: number): Promise<StoredCosignature[]> {
    const { rows } = await this.pool.query(
      `SELECT size, witness, line FROM ${this.t}_cosignatures WHERE size = $1 ORDER BY witness`,
      [size],
    );
    return rows.map((r) => ({ size: Number(r.size), witness: r.witness as string, line: r.line as string }));
  }

  async blob(hash: string): Promise<Buffer | undefined> {
    const { rows } = await this.pool.query(`SELECT data FROM ${this.t}_blobs WHERE hash = $1`, [hash]);
    return rows[0]?.data as Buffer | undefined;
  }

  /**
   * A transaction that takes an xid commits with a WAL record, and a synchronous
   * commit flushes the WAL up to it: every commit before it is on disk then too.
   */
  async sync(): Promise<void> {
    await this.pool.query(
      `BEGIN; SET LOCAL synchronous_commit TO ${this.syncLevel}; SELECT pg_current_xact_id(); COMMIT;`,
    );
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

const toEntry = (r: Record<string, unknown>): StoredEntry => ({
  index: Number(r.idx),
  leaf: r.leaf as Buffer,
  rootAfter: r.root_after as Buffer,
  meta: {
    kind: r.kind as EntryMeta['kind'],
    callId: r.call_id as string,
    principal: r.principal as string,
    tool: r.tool as string,
    decision: r.decision as string,
    session: r.session as string,
    time: Number(r.time),
  },
});

/** The entries' leaves and metadata as one array per column, for `unnest`. */
function columns(items: readonly AppendItem[]): unknown[][] {
  return [
    items.map((i) => i.leaf),
    items.map((i) => i.meta.kind),
    items.map((i) => i.meta.callId),
    items.map((i) => i.meta.principal),
    items.map((i) => i.meta.tool),
    items.map((i) => i.meta.decision),
    items.map((i) => i.meta.session),
    items.map((i) => i.meta.time),
  ];
}
