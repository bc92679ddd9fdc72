import type { Announcer, Journal } from '../approval/service.ts';
import type { Logger } from '../observability/log.ts';
import { pinnedForm } from './fingerprint.ts';
import type { ServerPin } from './store.ts';

/** What happened to a server pin, as its audit records name it. */
export type ServerPinEvent = 'first-use' | 'pinned' | 'approved';

export interface ServerPinEventsDeps {
  readonly journal: Journal;
  readonly announcer: Announcer;
  readonly log: Logger;
  readonly now: () => number;
  readonly newId: () => string;
}

/**
 * Every change to a server pin is an audit record (`type: server-pin`); a
 * refused start is an alert: a warning marked `alert: true` and a
 * `server.refused` event for the webhooks. (The refused start itself is the
 * `upstream-start` record the start writes.)
 */
export class ServerPinEvents {
  private readonly d: ServerPinEventsDeps;

  constructor(deps: ServerPinEventsDeps) {
    this.d = deps;
  }

  /** Writes the record; a record that cannot be written fails the change's caller (nothing is pinned unaudited). */
  async record(event: ServerPinEvent, pin: ServerPin, by: string, previous?: string): Promise<void> {
    this.d.log.info(`server pin ${event}`, { upstream: pin.upstream, digest: pin.pinned.digest, by });
    await this.d.journal({
      v: 1,
      type: 'server-pin',
      event,
      time: this.d.now(),
      callId: `spin_${this.d.newId()}`,
      session: '',
      principal: { id: by },
      tool: '',
      upstream: pin.upstream,
      status: pin.status,
      pinned: pinnedForm(pin.pinned),
      ...(previous ? { previousDigest: previous } : {}),
    });
  }

  alert(upstream: string, code: string, reason: string): void {
    this.d.log.warn('upstream refused to start: it does not match its pin', {
      alert: true,
      upstream,
      code,
      reason,
    });
    this.d.announcer.announce({
      type: 'server.refused',
      time: this.d.now(),
      id: `server/${upstream}`,
      summary: `upstream ${upstream} refused to start: ${reason}`,
      data: {
        upstream,
        code,
        reason,
        approveCommand: `portcullis servers approve ${upstream} --as NAME`,
      },
    });
  }
}
