import pg from 'pg';
import { type NamedStatement, namedStatement } from '../pg-statement.ts';
import {
  keysOf,
  type Revocation,
  type RevocationStore,
  type RevocationSubject,
  STORE_TIMEOUT_MS,
} from './revocations.ts';

/** Revocations in PostgreSQL, for replicas. `prefix` names the table (validated by the config schema). */
export class PostgresRevocationStore implements RevocationStore {
  private readonly pool: pg.Pool;
  private readonly table: string;
  private readonly findStatement: NamedStatement;
  private ready: Promise<void> | undefined;

  constructor(url: string, prefix: string) {
    if (!/^[a-z][a-z0-9_]{0,30}$/.test(prefix)) throw new Error('invalid table prefix');
    // Two checks per call: at 8 callers 4 connections queued them.
    // Bounded waits: a database that stalls (a lock, a failover) must deny calls, not hang them.
    this.pool = new pg.Pool({
      connectionString: url,
      max: 8,
      connectionTimeoutMillis: 3000,
      query_timeout: STORE_TIMEOUT_MS,
    });
    this.pool.on('error', () => {});
    this.table = `${prefix}_revocations`;
    const text = `SELECT kind, value, revoked_at, reason FROM ${this.table}
       WHERE (kind, value) IN (SELECT * FROM unnest($1::text[], $2::text[])) LIMIT 1`;
    this.findStatement = namedStatement(text);
  }

  private init(): Promise<void> {
    this.ready ??= this.pool
      .query(
        `CREATE TABLE IF NOT EXISTS ${this.table} (
          kind TEXT NOT NULL, value TEXT NOT NULL, revoked_at BIGINT NOT NULL, reason TEXT,
          PRIMARY KEY (kind, value))`,
      )
      .then(() => undefined)
      .catch((err: unknown) => {
        this.ready = undefined;
        throw err;
      });
    return this.ready;
  }

  async revoke(r: Revocation): Promise<void> {
    await this.init();
    await this.pool.query(
      `INSERT INTO ${this.table} (kind, value, revoked_at, reason) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
      [r.kind, r.value, r.revokedAt, r.reason ?? null],
    );
  }

  async find(subject: RevocationSubject): Promise<Revocation | undefined> {
    const keys = keysOf(subject);
    if (keys.length === 0) return undefined;
    await this.init();
    const res = await this.pool.query({
      ...this.findStatement,
      values: [keys.map((k) => k.kind), keys.map((k) => k.value)],
    });
    return res.rows[0] ? fromRow(res.rows[0]) : undefined;
  }

  async list(): Promise<Revocation[]> {
    await this.init();
    const res = await this.pool.query(`SELECT * FROM ${this.table} ORDER BY revoked_at`);
    return res.rows.map(fromRow);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

const fromRow = (r: {
  kind: Revocation['kind'];
  value: string;
  revoked_at: string;
  reason: string | null;
}) => ({
  kind: r.kind,
  value: r.value,
  revokedAt: Number(r.revoked_at),
  ...(r.reason === null ? {} : { reason: r.reason }),
});
