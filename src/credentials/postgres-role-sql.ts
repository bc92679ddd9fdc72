import { pgDriver } from './pg-driver.ts';

/**
 * The statements that make and unmake a dynamic role. Every name and value
 * spliced in goes through node-postgres's own quoting (role DDL takes no
 * bind parameters).
 */

/** The start of the comment on every role we create: revocation and reaping touch no role without it. */
export const ROLE_MARKER = 'portcullis dynamic role';

const ident = (name: string): string => pgDriver().escapeIdentifier(name);
const literal = (value: string): string => pgDriver().escapeLiteral(value);

export interface NewRole {
  readonly role: string;
  /** The SCRAM verifier of the password (scram.ts), never the password itself. */
  readonly verifier: string;
  readonly validUntil: Date;
  readonly grant: string;
  readonly upstream: string;
  readonly leaseId: string;
}

/** One simple-protocol batch, so PostgreSQL runs it as one transaction: no role ever exists without its marker. */
export function createRoleSql(r: NewRole): string {
  const comment = `${ROLE_MARKER} upstream=${r.upstream} lease=${r.leaseId}`;
  return [
    `CREATE ROLE ${ident(r.role)} LOGIN PASSWORD ${literal(r.verifier)} VALID UNTIL ${literal(r.validUntil.toISOString())}`,
    `GRANT ${ident(r.grant)} TO ${ident(r.role)}`,
    `COMMENT ON ROLE ${ident(r.role)} IS ${literal(comment)}`,
  ].join('; ');
}

/** Whether `role` exists and carries our marker (so it is ours to drop). */
export const OURS_SQL = `SELECT 1 FROM pg_roles
  WHERE rolname = $1 AND starts_with(coalesce(shobj_description(oid, 'pg_authid'), ''), $2)`;

/** Roles with our prefix and marker: whether VALID UNTIL has passed (by the database's clock) and the upstream named in the marker. */
export const OUR_ROLES_SQL = `SELECT rolname AS role,
    coalesce(rolvaliduntil < now(), false) AS expired,
    extract(epoch FROM rolvaliduntil - now()) * 1000 AS left_ms,
    shobj_description(oid, 'pg_authid') AS comment
  FROM pg_roles
  WHERE starts_with(rolname, $1) AND starts_with(coalesce(shobj_description(oid, 'pg_authid'), ''), $2)`;

/** No new logins from here on; the open ones are cut next. */
export const noLoginSql = (role: string): string => `ALTER ROLE ${ident(role)} NOLOGIN`;

/** Ends the role's sessions, waiting up to `$2` ms for each to be gone. */
export const TERMINATE_SQL = `SELECT pg_terminate_backend(pid, $2) FROM pg_stat_activity
  WHERE usename = $1 AND pid <> pg_backend_pid()`;

/**
 * Anything the role came to own is kept (handed to the admin role, as Vault
 * does); its grants go with it. Objects in other databases would block the
 * drop: a role granted a read-only template owns none. One batch, one
 * implicit transaction.
 */
export const dropRoleSql = (role: string): string =>
  [
    `REASSIGN OWNED BY ${ident(role)} TO CURRENT_USER`,
    `DROP OWNED BY ${ident(role)}`,
    `DROP ROLE ${ident(role)}`,
  ].join('; ');

/** The upstream named in a marker comment, or undefined when the comment is not ours. */
export function markedUpstream(comment: string | null): string | undefined {
  if (!comment?.startsWith(ROLE_MARKER)) return undefined;
  return / upstream=([a-z][a-z0-9_-]*)/.exec(comment)?.[1];
}

/** The lease id named in a marker comment, or undefined when the comment is not ours or names none. */
export function markedLease(comment: string | null): string | undefined {
  if (!comment?.startsWith(ROLE_MARKER)) return undefined;
  return / lease=(\S+)/.exec(comment)?.[1];
}
