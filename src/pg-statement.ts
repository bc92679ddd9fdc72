import { createHash } from 'node:crypto';

export interface NamedStatement {
  readonly name: string;
  readonly text: string;
}

/**
 * A prepared statement named after its text: node-postgres then has each
 * pooled connection parse and plan it once instead of on every call. The name
 * is unique per text and well short of PostgreSQL's 63-byte identifier limit.
 * Behind PgBouncer in transaction mode this needs PgBouncer 1.21 or later with
 * `max_prepared_statements` set (see the README).
 */
export const namedStatement = (text: string): NamedStatement => ({
  name: `portcullis_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`,
  text,
});
