import type { Announcer, Journal } from '../approval/service.ts';
import type { Logger } from '../observability/log.ts';
import { INSTRUCTIONS, type Pin, pinId } from './pins.ts';

/** What happened to a pin, as its audit records name it. */
export type PinEvent = 'first-seen' | 'changed' | 'quarantined' | 'approved' | 'poisoning';

/** Who saw it happen: the caller whose list revealed it, or the operator who acted. */
export interface PinWitness {
  readonly session: string;
  readonly principal: string;
}

export interface PinEventsDeps {
  readonly journal: Journal;
  readonly announcer: Announcer;
  readonly log: Logger;
  readonly now: () => number;
  readonly newId: () => string;
  /** The name callers see for an upstream's tool (`fs__read_file`). */
  readonly exposed: (upstream: string, tool: string) => string;
}

/**
 * Every pin event is an audit record (`type: tool-pin`); a quarantine and a
 * poisoning finding are alerts besides: a warning marked `alert: true`, and a
 * `tool.quarantined` event for the webhooks. An audit record that cannot be
 * written is logged as an error and does not undo what happened.
 */
export class PinEvents {
  private readonly d: PinEventsDeps;

  constructor(deps: PinEventsDeps) {
    this.d = deps;
  }

  async record(
    event: PinEvent,
    pin: Pin,
    who: PinWitness,
    extra: { previousHash?: string } = {},
  ): Promise<void> {
    const version = pin.pending ?? pin.current;
    const id = pinId(pin.upstream, pin.tool);
    const tool = pin.tool === INSTRUCTIONS ? id : this.d.exposed(pin.upstream, pin.tool);
    const time = this.d.now();
    const rules = version.findings.map((f) => f.rule);
    if (event === 'quarantined' || event === 'poisoning') this.alert(event, pin, { id, tool, time, rules });
    else this.d.log.info(`tool pin ${event}`, { pin: id, tool, principal: who.principal });
    const record = {
      v: 1,
      type: 'tool-pin',
      event,
      time,
      callId: `pin_${this.d.newId()}`,
      session: who.session,
      principal: { id: who.principal },
      tool,
      upstream: pin.upstream,
      pin: id,
      status: pin.status,
      hash: version.hash,
      ...(extra.previousHash ? { previousHash: extra.previousHash } : {}),
      score: version.score,
      findings: version.findings.map((f) => ({ rule: f.rule, score: f.score, where: f.where })),
      reason: pin.reason,
      ...(pin.by ? { by: pin.by } : {}),
    };
    await this.d.journal(record).catch((err: unknown) =>
      this.d.log.error('tool pin audit record not written', {
        pin: id,
        event,
        alert: true,
        err: String(err),
      }),
    );
  }

  private alert(
    event: PinEvent,
    pin: Pin,
    f: { id: string; tool: string; time: number; rules: string[] },
  ): void {
    const what = event === 'quarantined' ? `quarantined (${pin.reason})` : 'shows signs of tool poisoning';
    this.d.log.warn(`tool ${what}`, {
      alert: true,
      pin: f.id,
      tool: f.tool,
      reason: pin.reason,
      findings: f.rules,
    });
    if (event !== 'quarantined') return;
    this.d.announcer.announce({
      type: 'tool.quarantined',
      time: f.time,
      id: f.id,
      summary: `${f.tool} of ${pin.upstream} quarantined: ${pin.reason}`,
      data: {
        tool: f.tool,
        upstream: pin.upstream,
        reason: pin.reason,
        findings: f.rules,
        approveCommand: `portcullis tools approve ${pin.upstream} ${pin.tool} --as NAME`,
      },
    });
  }
}
