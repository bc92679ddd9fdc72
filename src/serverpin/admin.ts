import { PortcullisError } from '../errors.ts';
import type { ServerPinEvents } from './events.ts';
import type { Fingerprint } from './fingerprint.ts';
import { UnverifiableLaunch } from './packages.ts';
import type { PinnedLaunch, ServerPins } from './service.ts';
import { type ServerPin, type ServerPinStore, serverPinOf } from './store.ts';

const TRIES = 5;

/**
 * What an operator does to server pins (`portcullis servers pin | approve`):
 * each a compare-and-set on the shared record and an audit record naming the
 * operator. A pin written in the config is changed in the config, not here.
 */
export class ServerPinAdmin {
  private readonly store: ServerPinStore;
  private readonly pins: ServerPins;
  private readonly events: ServerPinEvents;
  private readonly now: () => number;

  constructor(deps: { store: ServerPinStore; pins: ServerPins; events: ServerPinEvents; now: () => number }) {
    this.store = deps.store;
    this.pins = deps.pins;
    this.events = deps.events;
    this.now = deps.now;
  }

  /** Pins what the upstream would run now; already pinned to exactly that is no change. */
  async pin(launch: PinnedLaunch, operator: string): Promise<{ pin: ServerPin; changed: boolean }> {
    notInConfig(launch);
    const actual = await this.current(launch);
    for (let i = 0; i < TRIES; i++) {
      const rec = await this.store.get(launch.upstream);
      if (rec) {
        const pin = serverPinOf(rec);
        if (pin.status === 'pinned' && pin.pinned.digest === actual.digest) return { pin, changed: false };
        throw new PortcullisError('ERR_SERVER_PIN_EXISTS', `${launch.upstream} is pinned to other hashes`);
      }
      const now = this.now();
      const pin: ServerPin = {
        upstream: launch.upstream,
        status: 'pinned',
        pinned: actual,
        origin: 'operator',
        by: operator,
        firstSeenAt: now,
        updatedAt: now,
      };
      if (!(await this.store.insert(pin, now))) continue;
      await this.events.record('pinned', pin, operator);
      return { pin, changed: true };
    }
    throw contended(launch.upstream);
  }

  /** Accepts what the upstream would run now in place of its pin (after a refusal, or ahead of one). */
  async approve(launch: PinnedLaunch, operator: string): Promise<{ pin: ServerPin; previous: Fingerprint }> {
    notInConfig(launch);
    const actual = await this.current(launch);
    for (let i = 0; i < TRIES; i++) {
      const rec = await this.store.get(launch.upstream);
      if (!rec) throw new PortcullisError('ERR_SERVER_PIN_UNKNOWN', `no server pin for ${launch.upstream}`);
      const pin = serverPinOf(rec);
      if (pin.status === 'pinned' && pin.pinned.digest === actual.digest)
        throw new PortcullisError('ERR_SERVER_PIN_NOT_REFUSED', `${launch.upstream} matches its pin`);
      const next: ServerPin = {
        upstream: pin.upstream,
        status: 'pinned',
        pinned: actual,
        origin: pin.origin,
        by: operator,
        firstSeenAt: pin.firstSeenAt,
        updatedAt: this.now(),
      };
      if (!(await this.store.replace(rec, next))) continue;
      await this.events.record('approved', next, operator, pin.pinned.digest);
      return { pin: next, previous: pin.pinned };
    }
    throw contended(launch.upstream);
  }

  private async current(launch: PinnedLaunch): Promise<Fingerprint> {
    try {
      return (await this.pins.inspect(launch)).actual;
    } catch (err) {
      if (!(err instanceof UnverifiableLaunch)) throw err;
      throw new PortcullisError('ERR_SERVER_UNVERIFIED', `${launch.upstream}: ${err.message}`);
    }
  }
}

function notInConfig(launch: PinnedLaunch): void {
  if (launch.pin)
    throw new PortcullisError('ERR_SERVER_PIN_IN_CONFIG', `${launch.upstream} is pinned in the config`);
}

const contended = (upstream: string): PortcullisError =>
  new PortcullisError('ERR_STATE_UNAVAILABLE', `server pin ${upstream}: changed concurrently too often`);
