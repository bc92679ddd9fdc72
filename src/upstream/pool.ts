import { JSONRPC, UpstreamError } from '../errors.ts';
import type { Logger } from '../observability/log.ts';
import type { Era } from '../protocol/versions.ts';
import { type ClientProfile, type RelatedSink, UpstreamConnection } from './connection.ts';
import type { MessageTransport } from './transport.ts';

export interface UpstreamSpec {
  name: string;
  /** Tool/prompt name prefix; "" when unprefixed. */
  prefix: string;
  timeoutMs: number;
  restart: { initialDelayMs: number; maxDelayMs: number };
  createTransport(): MessageTransport;
}

/** A client as the pool sees it: what it can do, and its era (its upstream is reached in that era where offered). */
export interface EraClient extends ClientProfile {
  era: Era;
}

interface Health {
  failures: number;
  retryAt: number;
}

/**
 * Live upstream connections, keyed by who they serve: each legacy client
 * session gets its own, so one caller's upstream state never leaks to another.
 * Each client is paired with an upstream of its own era where the upstream
 * offers it; the era an upstream answered in is remembered per principal and
 * client era, never shared.
 */
export class UpstreamPool {
  private readonly specs: ReadonlyMap<string, UpstreamSpec>;
  private readonly conns = new Map<string, Promise<UpstreamConnection>>();
  private readonly eras = new Map<string, Era>();
  private readonly health = new Map<string, Health>();
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(specs: readonly UpstreamSpec[], log: Logger, now: () => number = Date.now) {
    this.specs = new Map(specs.map((s) => [s.name, s]));
    this.log = log;
    this.now = now;
  }

  get names(): string[] {
    return [...this.specs.keys()];
  }

  spec(name: string): UpstreamSpec | undefined {
    return this.specs.get(name);
  }

  /** The connection for `key` to upstream `name`, opened (and handshaken) on first use. */
  get(
    key: string,
    principal: string,
    name: string,
    client: EraClient,
    unrelated?: RelatedSink,
  ): Promise<UpstreamConnection> {
    const id = `${key}\u0000${name}`;
    const existing = this.conns.get(id);
    if (existing) return existing;
    const opening = this.open(id, principal, name, client, unrelated);
    this.conns.set(id, opening);
    opening.catch(() => this.conns.delete(id));
    return opening;
  }

  private async open(
    id: string,
    principal: string,
    name: string,
    client: EraClient,
    unrelated?: RelatedSink,
  ): Promise<UpstreamConnection> {
    const spec = this.specs.get(name);
    if (!spec) throw new Error(`unknown upstream ${name}`);
    await this.waitForBackoff(name, spec.timeoutMs);
    const eraKey = `${principal}\u0000${name}\u0000${client.era}`;
    const knownEra = this.eras.get(eraKey);
    const conn = new UpstreamConnection(spec.createTransport(), {
      name,
      timeoutMs: spec.timeoutMs,
      clientEra: client.era,
      ...(unrelated ? { unrelated } : {}),
      ...(knownEra ? { knownEra } : {}),
      onClose: () => this.lost(id, name),
    });
    try {
      const hs = await conn.open(client);
      this.eras.set(eraKey, hs.era);
      this.health.delete(name);
      this.log.debug('upstream connected', { upstream: name, era: hs.era, version: hs.protocolVersion });
      return conn;
    } catch (err) {
      await conn.close();
      this.recordFailure(name, spec);
      throw new UpstreamError('ERR_UPSTREAM_UNAVAILABLE', `${name}: cannot connect: ${String(err)}`, {
        publicMessage: 'Upstream unavailable',
        rpcCode: JSONRPC.UPSTREAM_UNAVAILABLE,
        cause: err,
      });
    }
  }

  private lost(id: string, name: string): void {
    this.conns.delete(id);
    const spec = this.specs.get(name);
    if (spec) this.recordFailure(name, spec);
    this.log.warn('upstream connection lost; it will be restarted on next use', { upstream: name });
  }

  private recordFailure(name: string, spec: UpstreamSpec): void {
    const failures = (this.health.get(name)?.failures ?? 0) + 1;
    const delay = Math.min(spec.restart.initialDelayMs * 2 ** (failures - 1), spec.restart.maxDelayMs);
    this.health.set(name, { failures, retryAt: this.now() + delay });
  }

  private async waitForBackoff(name: string, timeoutMs: number): Promise<void> {
    const h = this.health.get(name);
    if (!h) return;
    const wait = h.retryAt - this.now();
    if (wait <= 0) return;
    if (wait > timeoutMs) {
      throw new UpstreamError('ERR_UPSTREAM_UNAVAILABLE', `${name}: restarting, backoff ${wait} ms`, {
        publicMessage: 'Upstream unavailable',
        rpcCode: JSONRPC.UPSTREAM_UNAVAILABLE,
      });
    }
    await new Promise((r) => setTimeout(r, wait));
  }

  /** Closes every connection that serves `key` (a session ended). */
  async release(key: string): Promise<void> {
    const mine = [...this.conns.entries()].filter(([id]) => id.startsWith(`${key}\u0000`));
    for (const [id] of mine) this.conns.delete(id);
    await Promise.all(mine.map(([, p]) => p.then((c) => c.close()).catch(() => {})));
  }

  async closeAll(): Promise<void> {
    const all = [...this.conns.values()];
    this.conns.clear();
    await Promise.all(all.map((p) => p.then((c) => c.close()).catch(() => {})));
  }
}
