import type { LoadedConfig } from '../config/load.ts';
import { resolveValue } from '../config/secrets.ts';
import type { Logger } from '../observability/log.ts';
import type { InstanceCredentials, InstanceHolder } from './instance.ts';
import { PostgresRoleBackend } from './postgres-role.ts';
import type { CredentialBackend, CredentialRequest } from './types.ts';

/** The per-instance credential of each upstream that has one, and how to let go of their backends. */
export interface InstanceCredentialSet {
  readonly byUpstream: ReadonlyMap<string, InstanceCredentials>;
  close(): Promise<void>;
}

export interface InstanceCredentialOptions {
  log: Logger;
  now: () => number;
  newId: () => string;
  /**
   * Drop, before the first role is minted, the roles a crashed gateway left
   * (see `PostgresRoleBackend.reap`). Only the gateway does: a CLI run beside
   * a running gateway would drop the roles it holds.
   */
  reap: boolean;
}

/**
 * A `PostgresRoleBackend` for each stdio upstream with a postgres-role
 * credential, its admin URL resolved now (an unresolvable reference stops the
 * start). Until the broker keeps leases in the state store, no lease is
 * outstanding at start, so a reap drops every role this upstream's prefix and
 * marker name: one gateway per role prefix and database.
 */
export function postgresRoleCredentials(
  loaded: LoadedConfig,
  opts: InstanceCredentialOptions,
): InstanceCredentialSet {
  const backends: PostgresRoleBackend[] = [];
  const byUpstream = new Map<string, InstanceCredentials>();
  for (const [name, up] of Object.entries(loaded.config.upstreams)) {
    if (up.credentials?.kind !== 'postgres-role') continue;
    const backend = new PostgresRoleBackend(up.credentials, {
      adminUrl: resolveValue(up.credentials.adminUrl, loaded.baseDir),
      upstream: name,
      now: opts.now,
    });
    backends.push(backend);
    const ready = opts.reap ? reapAtStart(backend, name, opts.log) : Promise.resolve();
    byUpstream.set(name, backendIssuer(backend, ready, opts.newId));
  }
  return { byUpstream, close: async () => void (await Promise.all(backends.map((b) => b.close()))) };
}

/** Never throws: a database that is down now fails each call closed, and the roles wait for the next start. */
async function reapAtStart(backend: PostgresRoleBackend, upstream: string, log: Logger): Promise<void> {
  try {
    const roles = await backend.reap();
    log.info('postgres roles reaped', { upstream, count: roles.length, roles });
  } catch (err) {
    log.warn('postgres roles not reaped', {
      upstream,
      err: err instanceof Error ? err.message : String(err),
    });
  }
}

/** Issues once the start-up reap is over, so a reap never races a role minted for a live instance. */
export function backendIssuer(
  backend: CredentialBackend,
  ready: Promise<void>,
  newId: () => string,
): InstanceCredentials {
  return {
    issueForInstance: async (holder) => {
      await ready;
      return backend.issue(instanceRequest(holder), newId());
    },
    revoke: (lease) => backend.revoke(lease),
  };
}

/** What an instance's credential is bound to: its holder; no tool or arguments (it serves every call of the instance). */
const instanceRequest = (holder: InstanceHolder): CredentialRequest => ({
  principal: holder.principal,
  subject: holder.principal,
  upstream: holder.upstream,
  sessionKey: holder.sessionKey ?? '',
  callId: '',
});
