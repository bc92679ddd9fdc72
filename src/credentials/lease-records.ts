import type { StoredRecord } from '../state/records.ts';
import type { Lease, LeaseGranularity } from './types.ts';

/** What happened to a lease, as its audit records name it. */
export type LeaseEvent = 'issued' | 'revoked';

/** Why a lease was revoked: its time ran out, its session ended, its upstream instance ended, its gateway stopped or died. */
export type RevokeReason = 'expired' | 'session-end' | 'instance-end' | 'shutdown' | 'reaped';

/** A lease as the broker keeps it: the contract's lease plus what revocation and reaping need. */
export interface HeldLease {
  readonly lease: Lease;
  readonly granularity: LeaseGranularity;
  /** The gateway run that issued it (reaping looks for leases of runs that are gone). */
  readonly run: string;
  readonly callId: string;
  /** The tool of the call it was issued for, if any. */
  readonly tool: string;
}

/** Every lease of one run shares a match key: a reaper finds a dead run's leases by it. */
export const runMatchKey = (run: string): string => `run:${run}`;
/** The record that says a run is alive, renewed by its sweeper; its `expiresAt` is the heartbeat deadline. */
export const runRecordId = (run: string): string => `run:${run}`;
/** The match key all run records share. */
export const RUNS_KEY = 'runs';

export function leaseToRecord(held: HeldLease): Omit<StoredRecord, 'version'> {
  return {
    kind: 'lease',
    id: held.lease.id,
    status: 'active',
    matchKey: runMatchKey(held.run),
    createdAt: held.lease.issuedAt,
    expiresAt: held.lease.expiresAt,
    body: { ...held } as unknown as Record<string, unknown>,
  };
}

export const leaseFromRecord = (rec: StoredRecord): HeldLease => rec.body as unknown as HeldLease;

/**
 * A lease's audit record (`type: lease`): who holds it, for which upstream and
 * scope, until when, and for which call. Never the credential itself.
 */
export function leaseAuditRecord(
  held: HeldLease,
  event: LeaseEvent,
  time: number,
  extra: { reason?: RevokeReason; session?: string } = {},
): Record<string, unknown> {
  const { lease } = held;
  return {
    v: 1,
    type: 'lease',
    event,
    time,
    callId: held.callId,
    session: extra.session ?? lease.sessionKey,
    tool: held.tool,
    principal: { id: lease.holder },
    leaseId: lease.id,
    backend: lease.backend,
    upstream: lease.upstream,
    scope: lease.scope,
    granularity: held.granularity,
    issuedAt: lease.issuedAt,
    expiresAt: lease.expiresAt,
    ...(extra.reason ? { reason: extra.reason } : {}),
  };
}
