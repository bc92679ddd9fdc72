import pg from 'pg';
import { type NamedStatement, namedStatement } from '../pg-statement.ts';
import { checkTime, encodeBody, findLimit, fromRow, guarded, type RecordRow } from './record-rules.ts';
import type { RecordKind, RecordQuery, RecordStore, StoredRecord } from './records.ts';
import { STORE_TIMEOUT_MS } from './revocations.ts';

/**
 * Records in PostgreSQL, for replicas: `${prefix}_records`, created on first
 * use. A replace is one `UPDATE … WHERE version = $n`: under READ COMMITTED a
 * second writer waits for the first, then finds the version moved on.
 */
export class PostgresRecordStore implements RecordStore {
  private readonly pool: pg.Pool;
  private readonly table: string;
  private readonly statements = new Map<string, NamedStatement>();
  private ready: Promise<void> | undefined;

  constructor(url: string, prefix: string) {
    if (!/^[a-z][a-z0-9_]{0,30}$/.test(prefix)) throw new Error('invalid table prefix');
    // Bounded waits: a database that stalls must fail the call (closed), not hang it.
    this.pool = new pg.Pool({
      connectionString: url,
      max: 4,
      connectionTimeoutMillis: 3000,
      query_timeout: STORE_TIMEOUT_MS,
    });
    this.pool.on('error', () => {});
    this.table = `${prefix}_records`;
  }

  async insert(record: Omit<StoredRecord, 'version'>): Promise<boolean> {
    const body = encodeBody(record);
    return this.run('insert', async () => {
      const res = await this.query(
        `INSERT INTO ${this.table} (kind, id, version, status, match_key, created_at, expires_at, body)
         VALUES ($1, $2, 1, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
        [record.kind, record.id, record.status, record.matchKey, record.createdAt, record.expiresAt, body],
      );
      return res.rowCount === 1;
    });
  }

  async get(kind: RecordKind, id: string): Promise<StoredRecord | undefined> {
    return this.run('get', async () => {
      const res = await this.query(`SELECT * FROM ${this.table} WHERE kind = $1 AND id = $2`, [kind, id]);
      return res.rows[0] ? fromRow(res.rows[0]) : undefined;
    });
  }

  async getMany(kind: RecordKind, ids: readonly string[]): Promise<StoredRecord[]> {
    return this.run('getMany', async () => {
      const res = await this.query(
        `SELECT r.* FROM unnest($2::text[]) WITH ORDINALITY AS wanted (id, n)
         JOIN ${this.table} r ON r.kind = $1 AND r.id = wanted.id ORDER BY wanted.n`,
        [kind, [...new Set(ids)]],
      );
      return res.rows.map(fromRow);
    });
  }

  async find(kind: RecordKind, query: RecordQuery): Promise<StoredRecord[]> {
    const limit = findLimit(query);
    if (query.status?.length === 0) return [];
    return this.run('find', async () => {
      const values: unknown[] = [kind, limit];
      let where = 'kind = $1';
      if (query.status) {
        values.push(query.status);
        where += ` AND status = ANY($${values.length}::text[])`;
      }
      if (query.matchKey !== undefined) {
        values.push(query.matchKey);
        where += ` AND match_key = $${values.length}`;
      }
      const res = await this.query(
        `SELECT * FROM ${this.table} WHERE ${where} ORDER BY created_at DESC, id COLLATE "C" DESC LIMIT $2`,
        values,
      );
      return res.rows.map(fromRow);
    });
  }

  async replace(
    expected: StoredRecord,
    change: Pick<StoredRecord, 'status' | 'matchKey' | 'expiresAt' | 'body'>,
  ): Promise<StoredRecord | undefined> {
    const body = encodeBody({ ...change, id: expected.id });
    return this.run('replace', async () => {
      const res = await this.query(
        `UPDATE ${this.table} SET version = version + 1, status = $4, match_key = $5, expires_at = $6, body = $7
         WHERE kind = $1 AND id = $2 AND version = $3 RETURNING *`,
        [
          expected.kind,
          expected.id,
          expected.version,
          change.status,
          change.matchKey,
          change.expiresAt,
          body,
        ],
      );
      return res.rows[0] ? fromRow(res.rows[0]) : undefined;
    });
  }

  async purgeExpired(before: number): Promise<number> {
    checkTime('before', before);
    return this.run('purgeExpired', async () => {
      const res = await this.query(`DELETE FROM ${this.table} WHERE expires_at < $1`, [before]);
      return res.rowCount ?? 0;
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private run<T>(what: string, op: () => Promise<T>): Promise<T> {
    return guarded(what, async () => {
      await this.init();
      return op();
    });
  }

  /** Each text is a named statement, parsed once per pooled connection. */
  private query(text: string, values: unknown[]): Promise<pg.QueryResult<RecordRow>> {
    let statement = this.statements.get(text);
    if (!statement) {
      statement = namedStatement(text);
      this.statements.set(text, statement);
    }
    return this.pool.query<RecordRow>({ ...statement, values });
  }

  /** Creates the table once; a failure is retried on the next call. */
  private init(): Promise<void> {
    // One statement list runs as one transaction; the lock keeps replicas starting together from racing on the DDL.
    this.ready ??= this.pool
      .query(
        `SELECT pg_advisory_xact_lock(hashtext('portcullis records'), hashtext('${this.table}'));
        CREATE TABLE IF NOT EXISTS ${this.table} (
          kind TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, status TEXT NOT NULL,
          match_key TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, body TEXT NOT NULL,
          PRIMARY KEY (kind, id));
        CREATE INDEX IF NOT EXISTS ${this.table}_status ON ${this.table} (kind, status, created_at);
        CREATE INDEX IF NOT EXISTS ${this.table}_match ON ${this.table} (kind, match_key, created_at);
        CREATE INDEX IF NOT EXISTS ${this.table}_created ON ${this.table} (kind, created_at);
        CREATE INDEX IF NOT EXISTS ${this.table}_expires ON ${this.table} (expires_at);`,
      )
      .then(() => undefined)
      .catch((err: unknown) => {
        this.ready = undefined;
        throw err;
      });
    return this.ready;
  }
}
