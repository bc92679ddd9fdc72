import { randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { ApproverRole } from '../approval/approvers.ts';
import { type AdminActor, type AdminEvent, adminItem } from '../audit/admin-records.ts';
import { AuditService } from '../audit/service.ts';
import type { AppendItem } from '../audit/store.ts';
import type { LoadedConfig } from '../config/load.ts';
import { PortcullisError } from '../errors.ts';
import { createLogger } from '../observability/log.ts';

/** The `--as` option every command that changes identities or keys takes. */
export const AS_OPTION = { as: { type: 'string' } } as const;

/** An operator's act, its record made (and its size checked) before it takes effect where it can be. */
export interface AdminAct {
  readonly item: AppendItem;
  /** What happened, for the error when it cannot be recorded. */
  readonly what: string;
}

/**
 * Who runs the command: with `--as`, an operator of `approvals.approvers.operators`
 * (ERR_APPROVER_NOT_ALLOWED otherwise, as for approvals); always the account and host.
 */
export function adminActor(loaded: LoadedConfig, as: string | undefined): AdminActor {
  const operator =
    as === undefined ? undefined : new ApproverRole(loaded.config.approvals.approvers).operator(as);
  let osUser: string;
  try {
    osUser = userInfo().username;
  } catch {
    // No passwd entry (a container's arbitrary uid): the uid is still who it was.
    osUser = `uid:${process.getuid?.() ?? 'unknown'}`;
  }
  return { ...(operator ? { operator } : {}), osUser, host: hostname() };
}

export function adminAct(
  event: AdminEvent,
  actor: AdminActor,
  detail: Readonly<Record<string, unknown>>,
  opts: { readonly id?: string; readonly what: string },
): AdminAct {
  return { item: adminItem(event, actor, opts.id ?? randomUUID(), Date.now(), detail), what: opts.what };
}

/**
 * Appends an operator's act to the config's audit log and waits until it is on
 * stable storage, whatever the log's durability mode. Throws
 * `ERR_AUDIT_UNAVAILABLE` (saying what happened) when it cannot.
 */
export async function recordAdminAct(loaded: LoadedConfig, act: AdminAct): Promise<void> {
  const audit = AuditService.fromConfig(loaded, createLogger('warn'));
  try {
    const { log } = await audit.ready;
    await log.stable(await log.append(act.item));
  } catch (err) {
    throw new PortcullisError(
      'ERR_AUDIT_UNAVAILABLE',
      `${act.what}: the audit log could not record it (${err instanceof Error ? err.message : String(err)})`,
    );
  } finally {
    await audit.close().catch(() => {});
  }
}
