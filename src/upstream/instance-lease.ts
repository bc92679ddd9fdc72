import type { InstanceCredentials, InstanceEnd, InstanceHolder } from '../credentials/instance.ts';
import type { Lease } from '../credentials/types.ts';
import type { Logger } from '../observability/log.ts';

/**
 * The credential one upstream instance was started with: issued before the
 * process starts, handed to it alone, and revoked once when the instance ends
 * or the lease expires (whichever comes first).
 */
export class InstanceLease {
  private readonly issuer: InstanceCredentials;
  private readonly log: Logger;
  private lease: Lease | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Set once the instance ended: every caller of `revoke` waits for the one revocation. */
  private revoking: Promise<void> | undefined;

  constructor(issuer: InstanceCredentials, log: Logger) {
    this.issuer = issuer;
    this.log = log;
  }

  /** Mints the instance's credential; `onExpire` runs when its lease runs out (by `now`'s clock). */
  async issue(
    holder: InstanceHolder,
    opts: { now: () => number; onExpire: () => void },
  ): Promise<Readonly<Record<string, string>>> {
    const { lease, credential } = await this.issuer.issueForInstance(holder);
    if (this.revoking || credential.kind !== 'env') {
      // The instance ended while this was minted, or the backend gave headers to a process.
      await this.takeBack(lease, 'instance-end');
      throw new Error('upstream instance ended before it started, or its credential is not variables');
    }
    this.lease = lease;
    this.timer = setTimeout(opts.onExpire, Math.max(0, lease.expiresAt - opts.now())).unref();
    this.log.info('upstream credential issued', {
      upstream: holder.upstream,
      lease: lease.id,
      expiresAt: lease.expiresAt,
    });
    return credential.env;
  }

  /** Whether the lease has run out as of `at`. */
  expiredBy(at: number): boolean {
    return this.lease !== undefined && this.lease.expiresAt <= at;
  }

  /** Takes the credential back, once however often it is called; `why` is recorded with the first. */
  revoke(why: InstanceEnd = 'instance-end'): Promise<void> {
    clearTimeout(this.timer);
    const lease = this.lease;
    this.lease = undefined;
    this.revoking ??= lease ? this.takeBack(lease, why) : Promise.resolve();
    return this.revoking;
  }

  /** A failure is logged, not thrown: the role still expires, and the next start reaps it. */
  private async takeBack(lease: Lease, why: InstanceEnd): Promise<void> {
    try {
      await this.issuer.revoke(lease, why);
      this.log.info('upstream credential revoked', { upstream: lease.upstream, lease: lease.id });
    } catch (err) {
      this.log.warn('upstream credential not revoked', {
        upstream: lease.upstream,
        lease: lease.id,
        err: err instanceof Error ? err.message : String(err),
      });
    }
  }
}
