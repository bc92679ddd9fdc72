import { ProtocolError } from '../errors.ts';
import type { Principal } from '../identity/principal.ts';
import type { DownstreamSession } from '../session.ts';
import type { ReplyBook, StandaloneStream } from './channel.ts';

/** One legacy (2025-era) HTTP session: what its `Mcp-Session-Id` stands for. */
export interface LegacyHttpSession {
  readonly session: DownstreamSession;
  readonly replies: ReplyBook;
  readonly stream: StandaloneStream;
  lastSeen: number;
}

export interface LegacySessionTableOptions {
  /** A session idle this long (and without a GET stream) is ended by `sweep`. */
  readonly idleMs: number;
  /** Ends a session upstream; called once per session the table lets go of. */
  readonly close: (session: DownstreamSession) => Promise<void>;
  readonly now?: () => number;
}

/**
 * The legacy sessions an HTTP listener holds, by id. A session id is not a
 * credential: each session stays bound to the principal that opened it. The
 * cap on sessions per caller is the upstream pool's (`SessionQuota`), taken
 * when `initialize` runs, so the table only remembers what was admitted.
 */
export class LegacySessionTable {
  private readonly sessions = new Map<string, LegacyHttpSession>();
  private readonly idleMs: number;
  private readonly closeSession: (session: DownstreamSession) => Promise<void>;
  private readonly now: () => number;

  constructor(opts: LegacySessionTableOptions) {
    this.idleMs = opts.idleMs;
    this.closeSession = opts.close;
    this.now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Holds a session whose `initialize` succeeded; it counts as seen now. */
  add(entry: Omit<LegacyHttpSession, 'lastSeen'>): LegacyHttpSession {
    const held: LegacyHttpSession = { ...entry, lastSeen: this.now() };
    this.sessions.set(entry.session.id, held);
    return held;
  }

  /**
   * The session `id` names, for `principal` (whose fresher credential it
   * takes on); refuses a missing id, an unknown one and another principal's.
   */
  resolve(id: string | undefined, principal: Principal): LegacyHttpSession {
    if (!id) throw new ProtocolError('ERR_SESSION_REQUIRED', 'legacy request without Mcp-Session-Id');
    const entry = this.sessions.get(id);
    if (!entry)
      throw new ProtocolError('ERR_SESSION_UNKNOWN', 'no such legacy session', { detail: { session: id } });
    if (entry.session.principal.id !== principal.id) {
      throw new ProtocolError('ERR_PRINCIPAL_MISMATCH', 'session used by another principal', {
        detail: { session: id },
      });
    }
    entry.session.principal = principal;
    entry.lastSeen = this.now();
    return entry;
  }

  /** Forgets the session, closes its GET stream, fails what awaits the client and closes it upstream. */
  async end(entry: LegacyHttpSession): Promise<void> {
    if (this.sessions.get(entry.session.id) !== entry) return;
    this.sessions.delete(entry.session.id);
    entry.stream.close();
    entry.replies.failAll();
    await this.closeSession(entry.session);
  }

  /** Ends every session idle (and without a GET stream) for `idleMs` as of `at`. */
  async sweep(at: number = this.now()): Promise<void> {
    const cutoff = at - this.idleMs;
    const idle = [...this.sessions.values()].filter((e) => e.lastSeen < cutoff && !e.stream.open);
    await Promise.all(idle.map((e) => this.end(e)));
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.sessions.values()].map((e) => this.end(e)));
  }
}
