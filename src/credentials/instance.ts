import type { Issued, Lease } from './types.ts';

/** Whom one upstream instance is started for: its credential is minted for exactly that holder. */
export interface InstanceHolder {
  readonly upstream: string;
  /** `Principal.id` of the caller the instance serves. */
  readonly principal: string;
  /** The downstream session the instance serves; unset for one serving a principal across sessions. */
  readonly sessionKey?: string;
}

/** Why an instance's credential is taken back: its lease ran out, its session ended, the instance ended otherwise (idle, lost, reclaimed), or the gateway stops. */
export type InstanceEnd = 'expired' | 'session-end' | 'instance-end' | 'shutdown';

/**
 * What the upstream pool needs of the credential broker when it starts a stdio
 * upstream whose credential lives as long as the instance (a database role):
 * one credential per instance, taken back when the instance ends or the lease
 * expires. Both throw ERR_CREDENTIAL_UNAVAILABLE when the backend cannot act.
 */
export interface InstanceCredentials {
  issueForInstance(holder: InstanceHolder): Promise<Issued>;
  revoke(lease: Lease, why: InstanceEnd): Promise<void>;
}
