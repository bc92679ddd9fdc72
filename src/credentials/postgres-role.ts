import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { ConfigError, PortcullisError } from '../errors.ts';
import type { PostgresRoleConfig } from './config.ts';
import { pgDriver } from './pg-driver.ts';
import {
  createRoleSql,
  dropRoleSql,
  markedLease,
  markedUpstream,
  noLoginSql,
  OUR_ROLES_SQL,
  OURS_SQL,
  ROLE_MARKER,
  TERMINATE_SQL,
} from './postgres-role-sql.ts';
import { scramVerifier } from './scram.ts';
import type { CredentialBackend, CredentialRequest, Issued, Lease } from './types.ts';

/** One of our roles as a reap sees it; `left_ms` is how long its VALID UNTIL has to run (null: none). */
interface RoleRow {
  readonly role: string;
  readonly expired: boolean;
  readonly left_ms: string | number | null;
  readonly comment: string | null;
}

/** How long after minting a role its lease may still be on its way to the state store. */
const RECORDING_GRACE_MS = 60_000;

export interface PostgresRoleOptions {
  /** The resolved admin connection string: it holds a privileged password and is never logged. */
  readonly adminUrl: string;
  /** The upstream the roles are for (named in each role's marker, so a reap keeps to its own). */
  readonly upstream: string;
  readonly now?: () => number;
}

/** Where the upstream connects: the admin URL's host, port and database unless the config names others. */
interface Target {
  readonly host: string;
  readonly port: string;
  readonly database: string;
  readonly sslmode: string | null;
}

/**
 * PostgreSQL roles minted per caller (or session), in the manner of Vault's
 * database secrets engine: `CREATE ROLE … LOGIN PASSWORD … VALID UNTIL …`
 * (the password's SCRAM verifier, so the server never sees the password)
 * granted the configured template role, marked with a comment, handed over as
 * a connection string; revoked by refusing new logins, terminating the role's
 * sessions and dropping it. PostgreSQL itself refuses the password after
 * VALID UNTIL (password authentication only: `trust` checks nothing).
 */
export class PostgresRoleBackend implements CredentialBackend {
  readonly kind = 'postgres-role';
  readonly granularity: 'principal' | 'session';
  private readonly cfg: PostgresRoleConfig;
  private readonly upstream: string;
  private readonly target: Target;
  private readonly admin: pg.Pool;
  private readonly now: () => number;
  /** Roles this process minted and has not dropped: a reap never takes them. */
  private readonly held = new Set<string>();

  constructor(cfg: PostgresRoleConfig, opts: PostgresRoleOptions) {
    this.cfg = cfg;
    this.upstream = opts.upstream;
    this.granularity = cfg.per;
    this.now = opts.now ?? Date.now;
    const admin = parseAdminUrl(opts.adminUrl);
    this.target = targetOf(cfg, admin);
    if (cfg.database) admin.pathname = `/${encodeURIComponent(cfg.database)}`;
    this.admin = new (pgDriver().Pool)({
      connectionString: admin.href,
      max: 2,
      connectionTimeoutMillis: cfg.timeoutMs,
      query_timeout: cfg.timeoutMs,
      statement_timeout: cfg.timeoutMs,
      application_name: 'portcullis-credentials',
    });
    // A pooled admin connection the server drops is replaced on next use; it must not end the process.
    this.admin.on('error', () => {});
  }

  async issue(req: CredentialRequest, leaseId: string): Promise<Issued> {
    const role = `${this.cfg.rolePrefix}${randomBytes(12).toString('hex')}`;
    const password = randomBytes(24).toString('base64url');
    const issuedAt = this.now();
    const expiresAt = issuedAt + this.cfg.ttlSeconds * 1000;
    const sql = createRoleSql({
      role,
      verifier: scramVerifier(password),
      validUntil: new Date(expiresAt),
      grant: this.cfg.grant,
      upstream: this.upstream,
      leaseId,
    });
    this.held.add(role);
    try {
      await this.admin.query(sql);
    } catch (err) {
      this.held.delete(role);
      throw unavailable('cannot create a role', err);
    }
    const lease: Lease = {
      id: leaseId,
      backend: this.kind,
      holder: req.principal,
      upstream: req.upstream,
      scope: this.cfg.grant,
      sessionKey: req.sessionKey,
      issuedAt,
      expiresAt,
      handle: { role },
    };
    return {
      lease,
      credential: { kind: 'env', env: { [this.cfg.env]: this.connectionString(role, password) } },
    };
  }

  /** Refuses new logins, cuts the role's open sessions, then drops it; a role gone already, or not ours, is left alone. */
  async revoke(lease: Lease): Promise<void> {
    const role = lease.handle?.role;
    if (lease.backend !== this.kind || !role?.startsWith(this.cfg.rolePrefix)) return;
    await this.dropRole(role);
  }

  /**
   * After a crash: drops every role with our prefix and marker that this
   * process does not hold and whose VALID UNTIL has passed, or that was minted
   * for this upstream and is not named in `active` (the roles of leases still
   * outstanding). Returns the roles dropped.
   */
  async reap(active: ReadonlySet<string> = new Set()): Promise<string[]> {
    return this.reapWhere(async (r) => !active.has(r.role));
  }

  /**
   * The second line behind the broker's reaper: drops every role with our
   * prefix and marker that this process does not hold and whose VALID UNTIL
   * has passed, or that was minted for this upstream under a lease `recorded`
   * does not show active (its record is gone, or says revoked). A role minted
   * in the last minute is left (by the database's clock): another replica may
   * be about to record its lease. Returns the roles dropped.
   */
  async reapUnrecorded(recorded: (leaseId: string) => Promise<boolean>): Promise<string[]> {
    const ttlMs = this.cfg.ttlSeconds * 1000;
    return this.reapWhere(async (r) => {
      if (ttlMs - Number(r.left_ms ?? 0) < RECORDING_GRACE_MS) return false;
      const lease = markedLease(r.comment);
      return lease === undefined || !(await recorded(lease));
    });
  }

  private async reapWhere(orphan: (r: RoleRow) => Promise<boolean>): Promise<string[]> {
    let rows: RoleRow[];
    try {
      rows = (await this.admin.query(OUR_ROLES_SQL, [this.cfg.rolePrefix, ROLE_MARKER])).rows;
    } catch (err) {
      throw unavailable('cannot list roles to reap', err);
    }
    const dropped: string[] = [];
    for (const r of rows) {
      if (this.held.has(r.role)) continue;
      const ours = markedUpstream(r.comment) === this.upstream;
      if (!r.expired && !(ours && (await orphan(r)))) continue;
      await this.dropRole(r.role);
      dropped.push(r.role);
    }
    return dropped;
  }

  async close(): Promise<void> {
    await this.admin.end();
  }

  private async dropRole(role: string): Promise<void> {
    let client: pg.PoolClient | undefined;
    try {
      client = await this.admin.connect();
      const ours = await client.query(OURS_SQL, [role, ROLE_MARKER]);
      if (ours.rowCount !== 0) {
        await client.query(noLoginSql(role));
        await client.query(TERMINATE_SQL, [role, this.cfg.timeoutMs]);
        await client.query(dropRoleSql(role));
      }
      this.held.delete(role);
    } catch (err) {
      // Revoked twice at once: the other drop won.
      if ((err as { code?: string }).code === '42704') return void this.held.delete(role);
      throw unavailable('cannot drop a role', err);
    } finally {
      client?.release();
    }
  }

  private connectionString(role: string, password: string): string {
    const { host, port, database, sslmode } = this.target;
    const tail = sslmode ? `?sslmode=${encodeURIComponent(sslmode)}` : '';
    const user = `${encodeURIComponent(role)}:${encodeURIComponent(password)}`;
    return `postgres://${user}@${host}:${port}/${encodeURIComponent(database)}${tail}`;
  }
}

function parseAdminUrl(adminUrl: string): URL {
  try {
    const url = new URL(adminUrl);
    if (url.protocol === 'postgres:' || url.protocol === 'postgresql:') return url;
  } catch {
    // The URL holds a password: the error names neither.
  }
  throw new ConfigError('credentials.adminUrl: not a postgres:// URL', [
    { path: 'credentials.adminUrl', message: 'must resolve to a postgres:// URL' },
  ]);
}

function targetOf(cfg: PostgresRoleConfig, admin: URL): Target {
  const raw = cfg.host ?? admin.hostname;
  if (!raw) {
    throw new ConfigError('credentials.host: the admin URL names no host', [
      { path: 'credentials.host', message: 'required when adminUrl names no host' },
    ]);
  }
  const host = raw.includes(':') && !raw.startsWith('[') ? `[${raw}]` : raw;
  const database = cfg.database ?? decodeURIComponent(admin.pathname.slice(1));
  return {
    host,
    port: String(cfg.port ?? (admin.port || 5432)),
    database: database || 'postgres',
    sslmode: admin.searchParams.get('sslmode'),
  };
}

/** Fail closed: the call is denied. The statements carry no password, so neither can the detail (for the log). */
function unavailable(what: string, err: unknown): PortcullisError {
  const code = (err as { code?: string }).code;
  const detail = err instanceof Error ? err.message : String(err);
  return new PortcullisError('ERR_CREDENTIAL_UNAVAILABLE', `postgres-role: ${what}: ${detail}`, {
    detail: { ...(code ? { pgCode: code } : {}) },
  });
}
