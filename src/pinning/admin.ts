import { PortcullisError } from '../errors.ts';
import { definitionDiff } from './diff.ts';
import type { PinEvents } from './events.ts';
import { type Pin, type PinStore, pinContended, pinId, pinOf } from './pins.ts';

const TRIES = 5;

/**
 * What an operator does to pins (`portcullis tools approve | quarantine`):
 * each change a compare-and-set on the shared record and an audit record
 * naming the operator. Replicas pick the change up at their next list.
 */
export class PinAdmin {
  private readonly pins: PinStore;
  private readonly events: PinEvents;
  private readonly now: () => number;

  constructor(pins: PinStore, events: PinEvents, now: () => number) {
    this.pins = pins;
    this.events = events;
    this.now = now;
  }

  async list(): Promise<Pin[]> {
    return (await this.pins.list()).map(pinOf);
  }

  /**
   * Accepts a quarantined tool: its pending definition (or, quarantined at
   * first sight or by an operator, the one pinned) becomes the pin. Returns the
   * diff of what was pinned against what is now accepted.
   */
  async approve(upstream: string, tool: string, operator: string): Promise<{ pin: Pin; diff: string }> {
    for (let i = 0; i < TRIES; i++) {
      const rec = await this.existing(upstream, tool);
      const pin = pinOf(rec);
      if (pin.status !== 'quarantined')
        throw new PortcullisError('ERR_PIN_NOT_QUARANTINED', `${pinId(upstream, tool)} is not quarantined`);
      const accepted = pin.pending ?? pin.current;
      const { pending: _, ...rest } = pin;
      const next: Pin = {
        ...rest,
        status: 'pinned',
        current: accepted,
        reason: '',
        by: operator,
        updatedAt: this.now(),
      };
      if (!(await this.pins.replace(rec, next))) continue;
      await this.events.record(
        'approved',
        next,
        { session: '', principal: operator },
        { previousHash: pin.current.hash },
      );
      return {
        pin: next,
        diff: definitionDiff(pin.current.definition, accepted.definition, pinId(upstream, tool)),
      };
    }
    throw pinContended(pinId(upstream, tool));
  }

  /** Quarantines a pinned tool by hand: hidden and refused until approved again. */
  async quarantine(upstream: string, tool: string, operator: string, reason: string): Promise<Pin> {
    for (let i = 0; i < TRIES; i++) {
      const rec = await this.existing(upstream, tool);
      const pin = pinOf(rec);
      if (pin.status === 'quarantined')
        throw new PortcullisError(
          'ERR_PIN_ALREADY_QUARANTINED',
          `${pinId(upstream, tool)} is already quarantined`,
        );
      const next: Pin = { ...pin, status: 'quarantined', reason, by: operator, updatedAt: this.now() };
      if (!(await this.pins.replace(rec, next))) continue;
      await this.events.record('quarantined', next, { session: '', principal: operator });
      return next;
    }
    throw pinContended(pinId(upstream, tool));
  }

  private async existing(upstream: string, tool: string) {
    const rec = await this.pins.get(upstream, tool);
    if (!rec) throw new PortcullisError('ERR_PIN_UNKNOWN', `no pin for ${pinId(upstream, tool)}`);
    return rec;
  }
}
