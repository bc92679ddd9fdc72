import { createHash } from 'node:crypto';
import { isDeepFrozen } from '../freeze.ts';
import type { JsonObject } from '../jsonrpc.ts';
import type { Logger } from '../observability/log.ts';
import type { StoredRecord } from '../state/records.ts';
import { DEFAULT_POISONING_THRESHOLD, type Poisoning } from '../upstream/config.ts';
import { exposeName } from '../upstream/naming.ts';
import { definitionHash, pinnedDefinition } from './definition.ts';
import type { PinEvents, PinWitness } from './events.ts';
import { type OtherTools, otherTools } from './names.ts';
import {
  INSTRUCTIONS,
  type Pin,
  type PinStore,
  type PinVersion,
  pinContended,
  pinId,
  pinOf,
} from './pins.ts';
import { type ScanReport, scanDefinition, scanInstructions } from './scanner.ts';

/** One upstream's answer to a tools/list (names are the upstream's own), and its server instructions. */
export interface UpstreamListing {
  readonly upstream: string;
  readonly tools: readonly JsonObject[];
  readonly instructions?: string | undefined;
}

export interface UpstreamPinning {
  /** Tool names are exposed with it: `PREFIX__TOOL`. */
  readonly prefix: string;
  readonly poisoning: Poisoning;
}

export interface ToolPinsDeps {
  readonly pins: PinStore;
  readonly events: PinEvents;
  readonly log: Logger;
  readonly now: () => number;
  /** Every configured upstream. */
  readonly upstreams: ReadonlyMap<string, UpstreamPinning>;
}

/** Compare-and-set tries before a pin that keeps changing under us fails closed. */
const TRIES = 5;
/** Tools of one listing whose pins are settled concurrently. */
const SETTLE_AT_ONCE = 64;
/** Definition hashes kept by their listed text (see `ToolPins.hashes`); past it the oldest go. */
const MAX_KEPT_HASHES = 16_384;

/** What a definition is checked as: a tool's (with its name) or a server's instructions. */
type Seen = { kind: 'tool'; def: JsonObject } | { kind: 'instructions'; text: string };

/** One listed definition to check against its pin. */
interface PinCheck {
  readonly id: string;
  /** The upstream's own tool name, or `#instructions`. */
  readonly tool: string;
  readonly seen: Seen;
  readonly hash: string;
}

/**
 * Tool-definition pinning against rug pulls. A tool is shown only while what
 * its upstream lists hashes to its pin; the first definition seen is pinned
 * (unless the poisoning scanner quarantines it), and any later change
 * quarantines the tool until an operator approves the new definition. Pins
 * live in the shared state store, so replicas agree; each replica keeps the
 * quarantined names in a set, so a call costs one lookup.
 */
export class ToolPins {
  private readonly d: ToolPinsDeps;
  private quarantined = new Set<string>();
  /**
   * Definition hashes by the SHA-256 of the definition's JSON text as listed (`JSON.stringify`
   * and a native hash: cheap, where canonicalising is not): the same text is the same
   * definition, so its canonical hash is not computed again on every list. Keyed by a digest,
   * not the text, so an upstream's megabyte descriptions cost 16,384 digests at most. Only the
   * hash is kept: every list still compares it with the stored pin.
   */
  private readonly hashes = new Map<string, string>();
  /** The check of a deep-frozen listed item (a kept listing's): it cannot change, so it is made and hashed once. */
  private readonly itemChecks = new WeakMap<JsonObject, { upstream: string; check: PinCheck }>();
  /**
   * Pins this replica read or wrote as `pinned`, with their hash, since the last `refresh`:
   * a tool listed with that hash again is shown without reading its pin. Cleared at each
   * refresh (every few seconds), so a pin another replica or the CLI changed is read again
   * as soon as the quarantined set would show it; a quarantined tool is never taken from here.
   */
  private confirmed = new Map<string, string>();
  /** Pins quarantined here while a load of the quarantined set is under way (it may not see them). */
  private readonly quarantinedDuringLoad = new Set<Set<string>>();
  /** Counts refreshes: what a review read before one is not kept after it. */
  private generation = 0;

  constructor(deps: ToolPinsDeps) {
    this.d = deps;
  }

  /** Whether a tool is quarantined, as of this replica's last list or refresh. */
  isQuarantined(upstream: string, tool: string): boolean {
    return this.quarantined.has(pinId(upstream, tool));
  }

  /**
   * Reloads the quarantined set from the store (what the CLI or another replica changed),
   * and forgets which pins were confirmed: each is read again at its next list.
   */
  async refresh(): Promise<void> {
    this.generation++;
    this.confirmed = new Map();
    await this.loadQuarantined();
  }

  /** The store's quarantined pins, and any this replica quarantined while they were read. */
  private async loadQuarantined(): Promise<void> {
    const during = new Set<string>();
    this.quarantinedDuringLoad.add(during);
    try {
      const ids = (await this.d.pins.list(['quarantined'])).map((r) => r.id);
      this.quarantined = new Set([...ids, ...during]);
    } finally {
      this.quarantinedDuringLoad.delete(during);
    }
  }

  /**
   * The tools of each listing a caller may see: those whose definition matches
   * their pin. Every listing is checked against the others' tools (shadowing,
   * look-alike names). An upstream whose pins cannot be read is left out of the answer.
   * The quarantined set is read on every list; a pin this replica confirmed
   * since the last refresh, listed with the same hash, is not read again.
   */
  async review(listings: readonly UpstreamListing[], who: PinWitness): Promise<Map<string, JsonObject[]>> {
    const out = new Map<string, JsonObject[]>();
    // An operator's quarantine (or another replica's) hides a tool from the next list, confirmed or not.
    try {
      await this.loadQuarantined();
    } catch (err) {
      this.d.log.warn('tools hidden: their pins cannot be checked', { err: String(err) });
      return out;
    }
    const names = new Map(
      listings.map((l) => {
        const prefix = this.d.upstreams.get(l.upstream)?.prefix ?? l.upstream;
        const own = l.tools.map((t) => String(t.name));
        return [l.upstream, [...own, ...own.map((n) => exposeName(prefix, n))]] as const;
      }),
    );
    for (const l of listings) {
      // Built only when a definition is scanned (a new or changed one), not on every list.
      let others: OtherTools | undefined;
      const othersOf = () => {
        others ??= otherTools(l.upstream, names);
        return others;
      };
      const visible = await this.reviewUpstream(l, othersOf, who).catch((err: unknown) => {
        this.d.log.warn('tools hidden: their pins cannot be checked', {
          upstream: l.upstream,
          err: String(err),
        });
        return undefined;
      });
      if (visible) out.set(l.upstream, visible);
    }
    return out;
  }

  private async reviewUpstream(
    l: UpstreamListing,
    others: () => OtherTools,
    who: PinWitness,
  ): Promise<JsonObject[]> {
    const generation = this.generation;
    const checks = l.tools.map((item) => this.toolCheck(l.upstream, item));
    if (l.instructions !== undefined) {
      const seen: Seen = { kind: 'instructions', text: l.instructions };
      checks.push({ id: pinId(l.upstream, INSTRUCTIONS), tool: INSTRUCTIONS, seen, hash: this.hashOf(seen) });
    }
    // Confirmed tools are shown; each other one as its settling says (by position, not name).
    const shown = checks.map((c) => this.isConfirmed(c.id, c.hash));
    const open = checks.filter((_, i) => !shown[i]);
    const stored = new Map(
      open.length === 0 ? [] : (await this.d.pins.getMany(open.map((c) => c.id))).map((r) => [r.id, r]),
    );
    // Settled SETTLE_AT_ONCE at a time: the pins and audit records of a thousand new tools
    // are written in fewer group commits than one after another (each tool's own in order).
    // The instructions' own records come after the tools', as they always have.
    const tools = checks.map((c, i) => ({ c, i })).filter(({ c, i }) => c.seen.kind === 'tool' && !shown[i]);
    for (let at = 0; at < tools.length; at += SETTLE_AT_ONCE) {
      const batch = tools.slice(at, at + SETTLE_AT_ONCE).map(async ({ c, i }) => {
        shown[i] = await this.settle(l.upstream, c, stored.get(c.id), others, who, generation);
      });
      await Promise.all(batch);
    }
    for (const c of open.filter((c) => c.seen.kind === 'instructions'))
      await this.settle(l.upstream, c, stored.get(c.id), others, who, generation);
    const twice = listedTwice(checks);
    if (twice.size > 0)
      this.d.log.warn('tools hidden: listed more than once by their upstream', {
        upstream: l.upstream,
        tools: [...twice],
      });
    // Nor one quarantined meanwhile, by this review or another.
    return l.tools.filter((_, i) => {
      const id = checks[i]!.id;
      return shown[i] && !twice.has(id) && !this.quarantined.has(id);
    });
  }

  /** A listed tool's pin id, the definition its pin covers, and that definition's hash. */
  private toolCheck(upstream: string, item: JsonObject): PinCheck {
    const made = this.itemChecks.get(item);
    if (made?.upstream === upstream) return made.check;
    const tool = String(item.name);
    const seen: Seen = { kind: 'tool', def: pinnedDefinition(item) };
    const check = { id: pinId(upstream, tool), tool, seen, hash: this.hashOf(seen) };
    if (isDeepFrozen(item)) this.itemChecks.set(item, { upstream, check });
    return check;
  }

  /** Known pinned with this very hash since the last refresh, and not quarantined since. */
  private isConfirmed(id: string, hash: string): boolean {
    return this.confirmed.get(id) === hash && !this.quarantined.has(id);
  }

  /** Compares one definition with its pin, pinning or quarantining as needed; true when it may be shown. */
  private async settle(
    upstream: string,
    check: PinCheck,
    stored: StoredRecord | undefined,
    others: () => OtherTools,
    who: PinWitness,
    generation: number,
  ): Promise<boolean> {
    const { tool, seen, hash } = check;
    let rec = stored;
    for (let i = 0; i < TRIES; i++) {
      const outcome = rec
        ? await this.compare(rec, hash, () => this.version(seen, hash, others), who)
        : await this.firstSight(upstream, tool, this.version(seen, hash, others), who);
      if (outcome !== 'raced') {
        this.mark(check, outcome, generation);
        return outcome === 'pinned';
      }
      rec = await this.d.pins.get(upstream, tool);
    }
    throw pinContended(check.id);
  }

  private hashOf(seen: Seen): string {
    const def = seen.kind === 'tool' ? seen.def : seen.text;
    const text = createHash('sha256')
      .update(`${seen.kind}\0${JSON.stringify(def, finiteOnly)}`)
      .digest('base64');
    let hash = this.hashes.get(text);
    if (hash === undefined) {
      hash = definitionHash(def);
      if (this.hashes.size >= MAX_KEPT_HASHES) this.hashes.delete(this.hashes.keys().next().value!);
      this.hashes.set(text, hash);
    }
    return hash;
  }

  private version(seen: Seen, hash: string, othersOf: () => OtherTools): PinVersion {
    const others = othersOf();
    const scan: ScanReport =
      seen.kind === 'tool' ? scanDefinition(seen.def, others) : scanInstructions(seen.text, others);
    const definition = seen.kind === 'tool' ? seen.def : seen.text;
    return { hash, definition, score: scan.score, findings: scan.findings, seenAt: this.d.now() };
  }

  private poisoned(upstream: string, v: PinVersion): { poisoned: boolean; quarantine: boolean } {
    const cfg = this.d.upstreams.get(upstream)?.poisoning ?? {
      threshold: DEFAULT_POISONING_THRESHOLD,
      action: 'quarantine',
    };
    const poisoned = v.score >= cfg.threshold;
    return { poisoned, quarantine: poisoned && cfg.action === 'quarantine' };
  }

  private async firstSight(
    upstream: string,
    tool: string,
    v: PinVersion,
    who: PinWitness,
  ): Promise<Pin['status'] | 'raced'> {
    const { poisoned, quarantine } = this.poisoned(upstream, v);
    const now = this.d.now();
    const pin: Pin = {
      upstream,
      tool,
      status: quarantine ? 'quarantined' : 'pinned',
      current: v,
      reason: quarantine ? 'poisoning' : '',
      firstSeenAt: now,
      updatedAt: now,
    };
    if (!(await this.d.pins.insert(pin, now))) return 'raced';
    // Appended together, in this order: one tool's records stay side by side in the log.
    await Promise.all([
      this.d.events.record('first-seen', pin, who),
      poisoned && this.d.events.record('poisoning', pin, who),
      quarantine && this.d.events.record('quarantined', pin, who),
    ]);
    return pin.status;
  }

  /** A known pin: unchanged, or a new definition that (re)quarantines the tool with it pending. */
  private async compare(
    rec: StoredRecord,
    hash: string,
    version: () => PinVersion,
    who: PinWitness,
  ): Promise<Pin['status'] | 'raced'> {
    const pin = pinOf(rec);
    if (pin.status === 'pinned' && pin.current.hash === hash) return 'pinned';
    // Quarantined stays quarantined, even if the server goes back to the pinned definition: an operator decides.
    if (pin.status === 'quarantined' && (hash === pin.current.hash || hash === pin.pending?.hash))
      return 'quarantined';
    const v = version();
    const next: Pin = {
      ...pin,
      status: 'quarantined',
      pending: v,
      reason: pin.status === 'pinned' ? 'changed' : pin.reason,
      updatedAt: this.d.now(),
    };
    if (!(await this.d.pins.replace(rec, next))) return 'raced';
    const previousHash = pin.pending?.hash ?? pin.current.hash;
    await Promise.all([
      this.d.events.record('changed', next, who, { previousHash }),
      this.poisoned(pin.upstream, v).poisoned && this.d.events.record('poisoning', next, who),
      pin.status === 'pinned' && this.d.events.record('quarantined', next, who),
    ]);
    return 'quarantined';
  }

  private mark({ id, hash }: PinCheck, status: Pin['status'], generation: number): void {
    if (status === 'quarantined') {
      this.quarantined.add(id);
      for (const during of this.quarantinedDuringLoad) during.add(id);
      this.confirmed.delete(id);
      return;
    }
    // Only a load of the quarantined set ends a quarantine here: a pin read as `pinned`
    // may be older than the quarantine another list of this replica just found or made.
    // A pin read before the last refresh may be older than what that refresh saw.
    if (generation === this.generation && !this.quarantined.has(id)) this.confirmed.set(id, hash);
  }
}

/**
 * Pin ids more than one entry of a listing has: an upstream naming two tools alike could
 * have a changed definition settled in one entry and the pinned one shown in the other.
 */
function listedTwice(checks: readonly PinCheck[]): Set<string> {
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const { id } of checks) (seen.has(id) ? twice : seen).add(id);
  return twice;
}

/** Each configured upstream's prefix and poisoning settings, as pinning needs them. */
export function upstreamPinning(
  upstreams: Readonly<Record<string, { prefix?: string | undefined; poisoning: Poisoning }>>,
): Map<string, UpstreamPinning> {
  return new Map(
    Object.entries(upstreams).map(([name, u]) => [
      name,
      { prefix: u.prefix ?? name, poisoning: u.poisoning },
    ]),
  );
}

/**
 * JSON.stringify writes Infinity and NaN as null, so a definition changed from
 * `null` to `1e999` would keep its key; the canonical hash refuses them, and so
 * does the key (the definition then fails closed, as it did before the cache).
 */
function finiteOnly(_key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value))
    throw new RangeError('a tool definition holds a number JSON cannot carry');
  return value;
}
