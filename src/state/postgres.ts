import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { type FeedChannel, type FeedOptions, RevocationFeed } from './revocation-feed.ts';
import {
  type Revocation,
  type RevocationStore,
  type RevocationSubject,
  STORE_TIMEOUT_MS,
} from './revocations.ts';

export interface PostgresFeedOptions extends FeedOptions {
  /** The LISTEN connection's `application_name`, as `pg_stat_activity` shows it. */
  readonly applicationName?: string;
}

/**
 * Revocations in PostgreSQL, for replicas. `prefix` names the table (validated
 * by the config schema). Writes and `list` go to the table through a small
 * pool; checks are answered from this replica's copy of the table, which a
 * LISTEN connection keeps current (see revocation-feed.ts): no round trip per call.
 */
export class PostgresRevocationStore implements RevocationStore {
  private readonly pool: pg.Pool;
  private readonly table: string;
  /** The replica's copy of the table; its events (`live`, `down`, `applied`) say what the channel does. */
  readonly feed: RevocationFeed;
  private ready: Promise<void> | undefined;

  constructor(url: string, prefix: string, options: PostgresFeedOptions = {}) {
    if (!/^[a-z][a-z0-9_]{0,30}$/.test(prefix)) throw new Error('invalid table prefix');
    // Bounded waits: a database that stalls (a lock, a failover) must fail a revocation, not hang it.
    this.pool = new pg.Pool({
      connectionString: url,
      max: 2,
      connectionTimeoutMillis: 3000,
      query_timeout: STORE_TIMEOUT_MS,
    });
    this.pool.on('error', () => {});
    this.table = `${prefix}_revocations`;
    const name = options.applicationName ?? `portcullis-listen ${this.table}`;
    this.feed = new RevocationFeed(() => listenChannel(url, this.table, name, () => this.init()), options);
  }

  /** The table, and the trigger that notifies every replica of each row inserted, by any writer. */
  private init(): Promise<void> {
    this.ready ??= this.pool
      .query(schema(this.table))
      .then(() => undefined)
      .catch((err: unknown) => {
        this.ready = undefined;
        throw err;
      });
    return this.ready;
  }

  async revoke(r: Revocation): Promise<void> {
    await this.init();
    const res = await this.pool.query(
      `INSERT INTO ${this.table} (kind, value, revoked_at, reason) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
      [r.kind, r.value, r.revokedAt, r.reason ?? null],
    );
    // The trigger tells every replica; this one need not wait for its own notification.
    if (res.rowCount === 1) this.feed.apply(r);
  }

  /** A lookup in memory; the first check waits for the table to load. Fails closed when the channel is down. */
  find(subject: RevocationSubject): Promise<Revocation | undefined> {
    return this.feed.find(subject);
  }

  sync(): Promise<void> {
    return this.feed.sync();
  }

  async list(): Promise<Revocation[]> {
    await this.init();
    const res = await this.pool.query<Row>(`SELECT * FROM ${this.table} ORDER BY revoked_at`);
    return res.rows.map(fromRow);
  }

  async close(): Promise<void> {
    await this.feed.close();
    await this.pool.end();
  }
}

/** A connection of its own that LISTENs on the table's channel; `prepare` creates the table and its trigger. */
function listenChannel(url: string, table: string, name: string, prepare: () => Promise<void>): FeedChannel {
  const client = new pg.Client({
    connectionString: url,
    application_name: name,
    connectionTimeoutMillis: STORE_TIMEOUT_MS,
    query_timeout: STORE_TIMEOUT_MS,
    keepAlive: true,
  });
  return {
    async open(onMessage, onLost) {
      client.on('error', onLost);
      client.on('end', () => onLost(new Error('the revocation channel closed')));
      client.on('notification', (n) => onMessage(n.payload ?? ''));
      await client.connect();
      await prepare();
      await client.query(`LISTEN ${table}`);
    },
    async load() {
      const res = await client.query<Row>(`SELECT kind, value, revoked_at, reason FROM ${table}`);
      return res.rows.map(fromRow);
    },
    async publish(payload) {
      await client.query(`SELECT pg_notify('${table}', $1)`, [payload]);
    },
    async close(polite) {
      if (polite) await Promise.race([client.end().catch(() => {}), sleep(1000, undefined, { ref: false })]);
      client.connection.stream.destroy();
    },
  };
}

interface Row {
  kind: Revocation['kind'];
  value: string;
  revoked_at: string;
  reason: string | null;
}

const fromRow = (r: Row): Revocation => ({
  kind: r.kind,
  value: r.value,
  revokedAt: Number(r.revoked_at),
  ...(r.reason === null ? {} : { reason: r.reason }),
});

/**
 * One implicit transaction under an advisory lock, so replicas starting
 * together do not race on the function. The notification carries the row as
 * JSON; one too large for NOTIFY's 8000 bytes drops the reason, and failing
 * that says `reload` (the replicas then read the table).
 */
const schema = (t: string) => `
SELECT pg_advisory_xact_lock(hashtext('${t}'));
CREATE TABLE IF NOT EXISTS ${t} (
  kind TEXT NOT NULL, value TEXT NOT NULL, revoked_at BIGINT NOT NULL, reason TEXT,
  PRIMARY KEY (kind, value));
CREATE OR REPLACE FUNCTION ${t}_notify() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE payload text;
BEGIN
  payload := json_build_object('kind', NEW.kind, 'value', NEW.value, 'revokedAt', NEW.revoked_at,
    'reason', NEW.reason)::text;
  IF octet_length(payload) > 7900 THEN
    payload := json_build_object('kind', NEW.kind, 'value', NEW.value, 'revokedAt', NEW.revoked_at)::text;
  END IF;
  IF octet_length(payload) > 7900 THEN payload := 'reload'; END IF;
  PERFORM pg_notify('${t}', payload);
  RETURN NULL;
END $fn$;
DO $do$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '${t}_notify' AND tgrelid = '${t}'::regclass) THEN
    CREATE TRIGGER ${t}_notify AFTER INSERT ON ${t} FOR EACH ROW EXECUTE FUNCTION ${t}_notify();
  END IF;
END $do$;`;
