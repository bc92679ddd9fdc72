import type { Announcer } from '../approval/service.ts';
import type { Logger } from '../observability/log.ts';
import { announcementOf, type BreakGlassEvent } from './records.ts';
import type { BreakGlassWindow } from './window.ts';

/**
 * Break-glass is loud: every event is a warning in the log marked
 * `alert: true`, and the ones people must hear of (requested, opened, used,
 * closed) also go to the announcer (webhooks). Raising an alert never throws.
 */
export class BreakGlassAlerts {
  private readonly announcer: Announcer;
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(deps: { announcer: Announcer; log: Logger; now: () => number }) {
    this.announcer = deps.announcer;
    this.log = deps.log;
    this.now = deps.now;
  }

  raise(event: BreakGlassEvent, w: BreakGlassWindow, data: Readonly<Record<string, unknown>> = {}): void {
    this.log.warn(`break-glass ${event}`, {
      alert: true,
      breakGlassId: w.id,
      scope: w.scope,
      status: w.status,
      reason: w.reason,
      expiresAt: new Date(w.expiresAt).toISOString(),
      ...data,
    });
    try {
      const announcement = announcementOf(w, event, this.now(), data);
      if (announcement) this.announcer.announce(announcement);
    } catch (err) {
      this.log.error('break-glass announcement failed', { breakGlassId: w.id, event, err: String(err) });
    }
  }
}
