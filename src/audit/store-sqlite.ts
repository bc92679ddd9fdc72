import { closeSync, fdatasync, fdatasyncSync, fstatSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { promisify } from 'node:util';
import { makePrivateDir, makePrivateFile } from '../private-files.ts';
import { AuditError } from './errors.ts';
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
  StableStorageFailed,
  type StoredCheckpoint,
  type StoredCosignature,
  type StoredEntry,
  type StoredLeaf,
  type TreeHead,
} from './store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), size INTEGER NOT NULL, range TEXT NOT NULL, root BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS audit_entries (idx INTEGER PRIMARY KEY, leaf BLOB NOT NULL, kind TEXT NOT NULL, call_id TEXT NOT NULL,
  principal TEXT NOT NULL, tool TEXT NOT NULL, decision TEXT NOT NULL, session TEXT NOT NULL, time INTEGER NOT NULL, root_after BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS audit_entries_principal ON audit_entries (principal, time);
CREATE INDEX IF NOT EXISTS audit_entries_session ON audit_entries (session);
CREATE TABLE IF NOT EXISTS audit_checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL, range TEXT);
CREATE TABLE IF NOT EXISTS audit_blobs (hash TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS audit_cosignatures (size INTEGER NOT NULL, witness TEXT NOT NULL, line TEXT NOT NULL, PRIMARY KEY (size, witness));
CREATE TRIGGER IF NOT EXISTS audit_cosignatures_no_update BEFORE UPDATE ON audit_cosignatures BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_cosignatures_no_delete BEFORE DELETE ON audit_cosignatures BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_entries_no_update BEFORE UPDATE ON audit_entries BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_entries_no_delete BEFORE DELETE ON audit_entries BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_blobs_no_update BEFORE UPDATE ON audit_blobs BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_blobs_no_delete BEFORE DELETE ON audit_blobs BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_head_no_delete BEFORE DELETE ON audit_head BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_head_no_shrink BEFORE UPDATE ON audit_head WHEN NEW.size < OLD.size BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
`;

/** The embedded store: one SQLite file in WAL mode; commits synced each (`each`) or when asked (`deferred`). */
export class SqliteAuditStore implements AuditStore {
  readonly db: DatabaseSync;
  readonly path: string;
  /** Which file was opened: a path that later names another file (or none) no longer receives the records. */
  private readonly opened: FileId | undefined;
  /** The append path's statements, prepared once: preparing costs more than running them. */
  private appendStatements: ReturnType<typeof prepareAppend> | undefined;
  /** The head's range as this store last wrote it, decoded: the next append reuses it while the stored text is the same. */
  private written: { text: string; range: CompactRange } | undefined;
  private readonly reads = new Map<string, StatementSync>();
  private readonly commitSync: CommitSync;
  /** The write-ahead log, opened for `sync()` and synced appends (deferred commits only). */
  private wal: { fd: number; ino: number } | undefined;
  /** Whether `audit_checkpoints` has its `range` column (a database from before it, opened read-only, does not). */
  private readonly rangeColumn: boolean;

  constructor(path: string, opts: { readOnly?: boolean; commitSync?: CommitSync } = {}) {
    this.commitSync = opts.commitSync ?? 'each';
    if (!opts.readOnly) {
      makePrivateDir(dirname(path));
      makePrivateFile(path);
    }
    this.path = path;
    this.db = new DatabaseSync(path, { readOnly: opts.readOnly ?? false });
    this.db.exec('PRAGMA busy_timeout = 10000');
    if (opts.readOnly) {
      this.rangeColumn = hasRangeColumn(this.db);
      return;
    }
    this.opened = fileId(path);
    this.db.exec('PRAGMA journal_mode = WAL');
    // NORMAL in WAL mode: a commit is written to the WAL (the OS has it: a crash of this process keeps it)
    // and reaches the disk at `sync()`; FULL: every commit waits for its fsync.
    this.db.exec(`PRAGMA synchronous = ${this.commitSync === 'each' ? 'FULL' : 'NORMAL'}`);
    this.db.exec(SCHEMA);
    // A log created before checkpoints kept their range: add the column; its old rows stay without one.
    if (!hasRangeColumn(this.db)) this.db.exec('ALTER TABLE audit_checkpoints ADD COLUMN range TEXT');
    this.rangeColumn = true;
    this.db.exec(
      `INSERT OR IGNORE INTO audit_head (id, size, range, root) VALUES (1, 0, '', x'${new CompactRange().root().toString('hex')}')`,
    );
  }

  async append(
    items: readonly AppendItem[],
    opts: AppendOptions = {},
  ): Promise<TreeHead & { first: number }> {
    this.appendStatements ??= prepareAppend(this.db);
    const { begin, readHead, insert, blob, moveHead, commit } = this.appendStatements;
    // BEGIN IMMEDIATE takes the write lock before the head is read: one writer across processes.
    begin.run();
    try {
      const [size, text] = readHead.get() as unknown as [number, string];
      const range = this.written?.text === text ? this.written.range : decodeRange(size, text);
      const { next, roots, root } = extend(range, items);
      items.forEach((item, i) => {
        for (const b of item.blobs) blob.run(b.hash, b.data);
        const m = item.meta;
        insert.run(
          size + i,
          item.leaf,
          m.kind,
          m.callId,
          m.principal,
          m.tool,
          m.decision,
          m.session,
          m.time,
          roots[i]!,
        );
      });
      const nextText = encodeRange(next);
      const moved = moveHead.run(next.size, nextText, root, size);
      if (moved.changes !== 1) throw new Error('tree head moved under the writer lock');
      commit.run();
      this.written = { text: nextText, range: next };
      // Checked after the commit: a batch written while the file was being deleted or replaced is refused too.
      this.assertSameFile();
      if (opts.sync) this.syncInline();
      return { first: size, size: next.size, root };
    } catch (err) {
      this.written = undefined;
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
  }

  /** Throws unless the path still names the file this store opened (not deleted, not replaced). */
  assertSameFile(): void {
    if (!this.opened) return;
    const now = fileId(this.path);
    if (now?.dev === this.opened.dev && now.ino === this.opened.ino) return;
    const what = now ? 'replaced by another file' : 'deleted';
    throw new AuditError('ERR_AUDIT_STORE_LOST', `the audit database ${this.path} was ${what} while open`, {
      detail: { path: this.path, what, opened: this.opened, now: now ?? null },
    });
  }

  async head(): Promise<TreeHead> {
    const row = this.db.prepare('SELECT size, root FROM audit_head WHERE id = 1').get() as
      | { size: number; root: Uint8Array }
      | undefined;
    return row
      ? { size: row.size, root: Buffer.from(row.root) }
      : { size: 0, root: new CompactRange().root() };
  }

  async entries(from: number, to: number): Promise<StoredEntry[]> {
    return toEntries(this.statement('entries', ENTRIES).all(from, to) as unknown as EntryRow[]);
  }

  async entriesFrom(from: number, limit: number): Promise<StoredEntry[]> {
    return toEntries(this.statement('entriesFrom', ENTRIES_FROM).all(from, limit) as unknown as EntryRow[]);
  }

  async leaves(from: number, to: number): Promise<StoredLeaf[]> {
    const rows = this.statement('leaves', LEAVES).all(from, to) as unknown as [number, Uint8Array][];
    return rows.map(([index, leaf]) => ({ index, leaf: Buffer.from(leaf) }));
  }

  /** A read statement, prepared once, returning rows as arrays (see `returningArrays`). */
  private statement(name: string, sql: string): StatementSync {
    let s = this.reads.get(name);
    if (!s) {
      s = returningArrays(this.db.prepare(sql));
      this.reads.set(name, s);
    }
    return s;
  }

  async addCheckpoint(c: StoredCheckpoint): Promise<void> {
    this.db
      .prepare('INSERT OR IGNORE INTO audit_checkpoints (size, note, range) VALUES (?, ?, ?)')
      .run(c.size, c.note, c.range ?? null);
  }

  async checkpoints(): Promise<StoredCheckpoint[]> {
    return this.db
      .prepare('SELECT size, note FROM audit_checkpoints ORDER BY size')
      .all() as unknown as StoredCheckpoint[];
  }

  async latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    const range = this.rangeColumn ? 'range' : 'NULL AS range';
    const row = this.db
      .prepare(`SELECT size, note, ${range} FROM audit_checkpoints ORDER BY size DESC LIMIT 1`)
      .get() as { size: number; note: string; range: string | null } | undefined;
    if (!row) return undefined;
    return { size: row.size, note: row.note, ...(row.range === null ? {} : { range: row.range }) };
  }

  async addCosignature(c: StoredCosignature): Promise<void> {
    this.db
      .prepare('INSERT OR IGNORE INTO audit_cosignatures (size, witness, line) VALUES (?, ?, ?)')
      .run(c.size, c.witness, c.line);
  }

  async cosignatures(size: number): Promise<StoredCosignature[]> {
    return this.db
      .prepare('SELECT size, witness, line FROM audit_cosignatures WHERE size = ? ORDER BY witness')
      .all(size) as unknown as StoredCosignature[];
  }

  async blob(hash: string): Promise<Buffer | undefined> {
    const row = this.db.prepare('SELECT data FROM audit_blobs WHERE hash = ?').get(hash) as
      | { data: Uint8Array }
      | undefined;
    return row ? Buffer.from(row.data) : undefined;
  }

  /**
   * fdatasync of the WAL on libuv's pool, so the event loop goes on meanwhile.
   * Every commit so far is in the WAL or, once checkpointed, in the database
   * file, which SQLite syncs before it lets the WAL restart. A store opened
   * `each` flushes too (its commits are synced already; this covers what
   * other writers committed without).
   */
  async sync(): Promise<void> {
    if (!this.db.isOpen) return;
    const wal = this.walFile(false);
    try {
      if (wal) await fdatasyncAsync(wal.fd);
    } catch (err) {
      throw new StableStorageFailed(`fdatasync of the audit WAL failed: ${String(err)}`, { cause: err });
    }
  }

  /**
   * As `sync()`, on the event loop's own thread, right after a commit: what
   * `synchronous = FULL` does inside the commit, for the commits that ask for it.
   */
  private syncInline(): void {
    if (this.commitSync === 'each') return;
    const wal = this.walFile(true);
    try {
      if (wal) fdatasyncSync(wal.fd);
    } catch (err) {
      throw new StableStorageFailed(`fdatasync of the audit WAL failed: ${String(err)}`, { cause: err });
    }
  }

  /**
   * The WAL file this connection writes. None before the first commit (unless
   * `committed`: right after one it must be there). One deleted or replaced
   * under a running writer cannot be synced: SQLite writes to the file it
   * holds open, and syncing another would prove nothing.
   */
  private walFile(committed: boolean): { fd: number; ino: number } | undefined {
    const now = statSync(`${this.path}-wal`, { throwIfNoEntry: false });
    if (this.wal && now?.ino === this.wal.ino) return this.wal;
    if (this.wal || (committed && !now)) {
      const what = now ? 'replaced by another file' : 'deleted';
      throw new StableStorageFailed(`the audit WAL ${this.path}-wal was ${what} while open`);
    }
    // No WAL yet: nothing was committed since the database was opened.
    if (!now) return undefined;
    const fd = openSync(`${this.path}-wal`, 'r');
    this.wal = { fd, ino: fstatSync(fd).ino };
    return this.wal;
  }

  async close(): Promise<void> {
    if (this.wal) closeSync(this.wal.fd);
    this.wal = undefined;
    if (this.db.isOpen) this.db.close();
  }
}

const fdatasyncAsync = promisify(fdatasync);

const ENTRIES =
  'SELECT idx, leaf, root_after, kind, call_id, principal, tool, decision, session, time FROM audit_entries WHERE idx >= ? AND idx < ? ORDER BY idx';
const ENTRIES_FROM =
  'SELECT idx, leaf, root_after, kind, call_id, principal, tool, decision, session, time FROM audit_entries WHERE idx >= ? ORDER BY idx LIMIT ?';
const LEAVES = 'SELECT idx, leaf FROM audit_entries WHERE idx >= ? AND idx < ? ORDER BY idx';

type EntryRow = [
  idx: number,
  leaf: Uint8Array,
  rootAfter: Uint8Array,
  kind: EntryMeta['kind'],
  callId: string,
  principal: string,
  tool: string,
  decision: string,
  session: string,
  time: number,
];

const toEntries = (rows: readonly EntryRow[]): StoredEntry[] =>
  rows.map(([index, leaf, rootAfter, kind, callId, principal, tool, decision, session, time]) => ({
    index,
    leaf: Buffer.from(leaf),
    rootAfter: Buffer.from(rootAfter),
    meta: { kind, callId, principal, tool, decision, session, time },
  }));

const hasRangeColumn = (db: DatabaseSync): boolean =>
  (db.prepare('PRAGMA table_info(audit_checkpoints)').all() as { name: string }[]).some(
    (c) => c.name === 'range',
  );

interface FileId {
  readonly dev: number;
  readonly ino: number;
}

const fileId = (path: string): FileId | undefined => {
  const st = statSync(path, { throwIfNoEntry: false });
  return st ? { dev: st.dev, ino: st.ino } : undefined;
};

function returningArrays(statement: StatementSync): StatementSync {
  statement.setReturnArrays(true);
  return statement;
}

function prepareAppend(db: DatabaseSync) {
  return {
    begin: db.prepare('BEGIN IMMEDIATE'),
    commit: db.prepare('COMMIT'),
    // Rows as arrays: node:sqlite gives each row object a map of its own, so every field read of one misses V8's caches.
    readHead: returningArrays(db.prepare('SELECT size, range FROM audit_head WHERE id = 1')),
    insert: db.prepare(
      'INSERT INTO audit_entries (idx, leaf, kind, call_id, principal, tool, decision, session, time, root_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    blob: db.prepare('INSERT OR IGNORE INTO audit_blobs (hash, data) VALUES (?, ?)'),
    moveHead: db.prepare('UPDATE audit_head SET size = ?, range = ?, root = ? WHERE id = 1 AND size = ?'),
  };
}
