import type { LoadedConfig } from '../config/load.ts';
import { resolveValue } from '../config/secrets.ts';
import type { Logger } from '../observability/log.ts';
import type { CredentialBroker } from './broker.ts';
import type { InstanceCredentials, InstanceHolder } from './instance.ts';
import { PostgresRoleBackend } from './postgres-role.ts';
import type { CredentialBackend, CredentialRequest } from './types.ts';

/** The per-instance credential of each upstream that has one, and how to let go of their backends. */
export interface InstanceCredentialSet {
  readonly byUpstream: ReadonlyMap<string, InstanceCredentials>;
  close(): Promise<void>;
}

/**
 * A `PostgresRoleBackend` for each stdio upstream with a postgres-role
 * credential, by upstream name, its admin URL resolved now (an unresolvable
 * reference stops the start).
 */
export function postgresRoleBackends(
  loaded: LoadedConfig,
  opts: { now: () => number },
): Map<string, PostgresRoleBackend> {
  const backends = new Map<string, PostgresRoleBackend>();
  for (const [name, up] of Object.entries(loaded.config.upstreams)) {
    if (up.credentials?.kind !== 'postgres-role') continue;
    const backend = new PostgresRoleBackend(up.credentials, {
      adminUrl: resolveValue(up.credentials.adminUrl, loaded.baseDir),
      upstream: name,
      now: opts.now,
    });
    backends.set(name, backend);
  }
  return backends;
}

/**
 * The gateway's instance credentials: each role is issued through `broker`
 * (its lease in the state store and the audit log before the instance starts,
 * revoked through it, reaped by it after a crash). The broker owns and closes
 * the backends. Before the first role, once the broker has reaped what dead
 * runs left, each backend drops the roles of its upstream whose lease record
 * is gone (the second line: see `PostgresRoleBackend.reapUnrecorded`).
 */
export function brokeredInstanceCredentials(
  broker: CredentialBroker,
  backends: ReadonlyMap<string, PostgresRoleBackend>,
  opts: { log: Logger },
): Map<string, InstanceCredentials> {
  const byUpstream = new Map<string, InstanceCredentials>();
  for (const [name, backend] of backends) {
    // Started now, like the broker's own reap: what a crash left goes before this run mints a role.
    const ready = broker
      .start()
      .then(() => backend.reapUnrecorded((lease) => broker.leaseActive(lease)))
      .then(
        (roles) => opts.log.info('postgres roles reaped', { upstream: name, count: roles.length, roles }),
        (err) => opts.log.warn('postgres roles not reaped', { upstream: name, err: errText(err) }),
      );
    byUpstream.set(name, {
      issueForInstance: async (holder) => {
        await ready;
        const { lease, credential } = await broker.issueForInstance(instanceRequest(holder));
        return { lease, credential };
      },
      revoke: (lease, why) => broker.revoke(lease.id, why),
    });
  }
  return byUpstream;
}

/**
 * For the CLI (`portcullis policy` listing tools beside a running gateway): a
 * role minted and dropped directly, unrecorded, and nothing reaped (that would
 * drop the roles a running gateway holds).
 */
export function directInstanceCredentials(loaded: LoadedConfig, newId: () => string): InstanceCredentialSet {
  const backends = postgresRoleBackends(loaded, { now: Date.now });
  const byUpstream = new Map<string, InstanceCredentials>();
  for (const [name, backend] of backends) byUpstream.set(name, backendIssuer(backend, newId));
  return {
    byUpstream,
    close: async () => void (await Promise.all([...backends.values()].map((b) => b.close()))),
  };
}

/** Issues and revokes straight at the backend: no lease record, no audit. */
export function backendIssuer(backend: CredentialBackend, newId: () => string): InstanceCredentials {
  return {
    issueForInstance: (holder) => backend.issue(instanceRequest(holder), newId()),
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

const errText = (err: unknown): string => (err instanceof Error ? err.message : String(err));
