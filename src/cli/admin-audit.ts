import { randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { type AdminActor, type AdminEvent, adminRecord } from '../audit/admin-records.ts';
import { AuditService } from '../audit/service.ts';
import type { LoadedConfig } from '../config/load.ts';
import { PortcullisError, UsageError } from '../errors.ts';
import { createLogger } from '../observability/log.ts';

/** The `--as` option every command that changes identities or keys takes. */
export const AS_OPTION = { as: { type: 'string' } } as const;

/** Who runs the command: the declared name (`--as`), the account and the host, as the record says. */
export function adminActor(as: string | undefined): AdminActor {
  if (as !== undefined && as.trim() === '') throw new UsageError('--as must not be empty');
  let osUser: string;
  try {
    osUser = userInfo().username;
  } catch {
    // No passwd entry (a container's arbitrary uid): the uid is still who it was.
    osUser = `uid:${process.getuid?.() ?? 'unknown'}`;
  }
  return { ...(as !== undefined ? { as: as.trim() } : {}), osUser, host: hostname() };
}

/**
 * Appends an operator's act to the config's audit log and waits until it is
 * durable. Throws `ERR_AUDIT_UNAVAILABLE` (saying `what`) when it cannot.
 */
export async function recordAdminAct(
  loaded: LoadedConfig,
  event: AdminEvent,
  actor: AdminActor,
  detail: Readonly<Record<string, unknown>>,
  opts: { readonly id?: string; readonly what: string },
): Promise<void> {
  const audit = AuditService.fromConfig(loaded, createLogger('warn'));
  try {
    await audit.append(adminRecord(event, actor, opts.id ?? randomUUID(), Date.now(), detail));
  } catch (err) {
    throw new PortcullisError(
      'ERR_AUDIT_UNAVAILABLE',
      `${opts.what}: the audit log could not record it (${err instanceof Error ? err.message : String(err)})`,
    );
  } finally {
    await audit.close().catch(() => {});
  }
}
