import { dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { PortcullisError } from '../errors.ts';
import { makePrivateDir, makePrivateFile } from '../private-files.ts';
import { keysOf, type Revocation, type RevocationStore, type RevocationSubject } from './revocations.ts';

/** The embedded default: one SQLite file (WAL), shared by the CLI and a running gateway. */
export class SqliteRevocationStore implements RevocationStore {
  private readonly db: DatabaseSync;
  /** One statement per number of keys a subject has (1–4): a check is one query, not one per key. */
  private readonly lookups = new Map<number, ReturnType<DatabaseSync['prepare']>>();

  constructor(path: string) {
    try {
      if (path !== ':memory:') {
        makePrivateDir(dirname(path));
        makePrivateFile(path);
      }
      this.db = new DatabaseSync(path);
      this.db.exec('PRAGMA journal_mode=WAL; PRAGMA busy_timeout=2000;');
      this.db.exec(`CREATE TABLE IF NOT EXISTS revocations (
        kind TEXT NOT NULL, value TEXT NOT NULL, revoked_at INTEGER NOT NULL, reason TEXT,
        PRIMARY KEY (kind, value))`);
    } catch (err) {
      throw new PortcullisError('ERR_STATE_UNAVAILABLE', `cannot open state store ${path}`, { cause: err });
    }
  }

  async revoke(r: Revocation): Promise<void> {
    this.db
      .prepare('INSERT OR IGNORE INTO revocations (kind, value, revoked_at, reason) VALUES (?, ?, ?, ?)')
      .run(r.kind, r.value, r.revokedAt, r.reason ?? null);
  }

  async find(subject: RevocationSubject): Promise<Revocation | undefined> {
    const keys = keysOf(subject);
    if (keys.length === 0) return undefined;
    const row = this.lookup(keys.length).get(...keys.flatMap((k) => [k.kind, k.value])) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  /** Every check reads the file: nothing to wait for. */
  async sync(): Promise<void> {}

  private lookup(keyCount: number): ReturnType<DatabaseSync['prepare']> {
    let statement = this.lookups.get(keyCount);
    if (!statement) {
      const where = Array.from({ length: keyCount }, () => '(kind = ? AND value = ?)').join(' OR ');
      statement = this.db.prepare(
        `SELECT kind, value, revoked_at, reason FROM revocations WHERE ${where} ORDER BY revoked_at LIMIT 1`,
      );
      this.lookups.set(keyCount, statement);
    }
    return statement;
  }

  async list(): Promise<Revocation[]> {
    return (this.db.prepare('SELECT * FROM revocations ORDER BY revoked_at').all() as unknown as Row[]).map(
      fromRow,
    );
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

interface Row {
  kind: Revocation['kind'];
  value: string;
  revoked_at: number;
  reason: string | null;
}

const fromRow = (r: Row): Revocation => ({
  kind: r.kind,
  value: r.value,
  revokedAt: Number(r.revoked_at),
  ...(r.reason === null ? {} : { reason: r.reason }),
});
