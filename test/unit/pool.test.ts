import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JSONRPC, UpstreamError } from '../../src/errors.ts';
import { ANONYMOUS } from '../../src/identity/principal.ts';
import type { JsonRpcMessage, JsonRpcRequest, JsonRpcResponse } from '../../src/jsonrpc.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { newSession } from '../../src/session.ts';
import { ReplyBook, StandaloneStream } from '../../src/transport/channel.ts';
import { Aggregator } from '../../src/upstream/aggregate.ts';
import { SessionQuota } from '../../src/upstream/capacity.ts';
import { type Isolation, limitsSchema } from '../../src/upstream/config.ts';
import type { ClientProfile, RelatedSink } from '../../src/upstream/connection.ts';
import { type PoolClient, UpstreamPool } from '../../src/upstream/pool.ts';
import type { InstanceHolder } from '../../src/upstream/start-record.ts';
import type { MessageTransport } from '../../src/upstream/transport.ts';
import { failsWith } from '../helpers.ts';

/** An in-memory legacy upstream: answers initialize and ping, records what it was told, can ask the client. */
class FakeUpstream implements MessageTransport {
  onmessage?: (m: JsonRpcMessage) => void;
  onclose?: () => void;
  onerror?: (e: Error) => void;
  closed = false;
  initializedWith: ClientProfile | undefined;
  async start(): Promise<void> {}
  async send(message: JsonRpcMessage): Promise<void> {
    const req = message as JsonRpcRequest;
    if (req.method === 'initialize') {
      const p = req.params as {
        capabilities: ClientProfile['capabilities'];
        clientInfo: ClientProfile['info'];
      };
      this.initializedWith = { capabilities: p.capabilities, info: p.clientInfo };
      this.reply(req, {
        protocolVersion: '2025-11-25',
        capabilities: { tools: {} },
        serverInfo: { name: 'fake' },
      });
    } else if (req.method === 'server/discover') {
      queueMicrotask(() =>
        this.onmessage?.({ jsonrpc: '2.0', id: req.id, error: { code: -32601, message: 'no' } }),
      );
    } else if (req.method === 'tools/list') this.reply(req, { tools: [] });
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  /** A request of the server's own, sent unprompted. */
  ask(method: string): void {
    this.onmessage?.({ jsonrpc: '2.0', id: 'srv-1', method });
  }
  private reply(req: JsonRpcRequest, result: Record<string, unknown>): void {
    queueMicrotask(() => this.onmessage?.({ jsonrpc: '2.0', id: req.id, result }));
  }
}

function fixture(
  opts: {
    isolation?: Isolation;
    limits?: Record<string, number>;
    refuse?: () => Error | undefined;
    restartDelayMs?: number;
  } = {},
) {
  const spawned: FakeUpstream[] = [];
  const holders: InstanceHolder[] = [];
  let clock = 1_000;
  const limits = limitsSchema.parse({ instanceIdleMs: 60_000, ...opts.limits });
  const pool = new UpstreamPool(
    [
      {
        name: 'up',
        prefix: 'up',
        timeoutMs: 5_000,
        toolListCacheMs: 0,
        restart: { initialDelayMs: opts.restartDelayMs ?? 10, maxDelayMs: opts.restartDelayMs ?? 100 },
        isolation: opts.isolation ?? 'principal',
        createTransport: async (holder) => {
          holders.push(holder);
          const refused = opts.refuse?.();
          if (refused) throw refused;
          const t = new FakeUpstream();
          spawned.push(t);
          return t;
        },
      },
    ],
    silentLogger,
    { limits, now: () => clock },
  );
  const running = () => spawned.filter((t) => !t.closed).length;
  const advance = (ms: number) => {
    clock += ms;
  };
  return { pool, spawned, holders, running, advance, now: () => clock };
}

const caller = (key: string, principal: string, holds: boolean, sink?: RelatedSink): PoolClient => ({
  key,
  principal,
  holds,
  client: { capabilities: { roots: { listChanged: true } }, info: { name: key } },
  // A stateless call is a 2026-07-28 client; a session holder a 2025-11-25 one.
  era: holds ? 'legacy' : 'modern',
  unrelated: sink ?? { notify() {}, request: async (m) => ({ jsonrpc: '2.0', id: m.id, result: {} }) },
});

const isCapacity = failsWith('ERR_CAPACITY');

describe('the upstream pool', () => {
  it('tells the transport factory whom each instance serves: one session, one caller, or everyone', async () => {
    for (const isolation of ['session', 'principal', 'shared'] as const) {
      const { pool, holders } = fixture({ isolation });
      await pool.get(caller('s1', 'alice', true), 'up');
      await pool.closeAll();
      assert.deepEqual(holders, [
        {
          isolation,
          principal: isolation === 'shared' ? '' : 'alice',
          session: isolation === 'session' ? 's1' : '',
        },
      ]);
    }
  });

  it('answers a refused start with its own error and tries the start again at the next use, without backoff', async () => {
    let refuse = true;
    const pinned = () =>
      refuse ? new UpstreamError('ERR_SERVER_PIN_MISMATCH', 'up: refused to start') : undefined;
    // A backoff this long would fail the next start at once (longer than the upstream timeout).
    const { pool, holders, running } = fixture({ refuse: pinned, restartDelayMs: 600_000 });
    await assert.rejects(pool.get(caller('s1', 'alice', true), 'up'), failsWith('ERR_SERVER_PIN_MISMATCH'));
    await assert.rejects(pool.get(caller('s1', 'alice', true), 'up'), failsWith('ERR_SERVER_PIN_MISMATCH'));
    refuse = false;
    await pool.get(caller('s1', 'alice', true), 'up');
    assert.deepEqual([holders.length, running(), pool.live()], [3, 1, 1]);
    await pool.closeAll();
  });

  it('serves every session of one caller from one instance with isolation principal, and other callers from their own', async () => {
    const { pool, running } = fixture();
    const a1 = await pool.get(caller('s1', 'alice', true), 'up');
    const a2 = await pool.get(caller('s2', 'alice', true), 'up');
    const b = await pool.get(caller('s3', 'bob', true), 'up');
    assert.equal(a1, a2);
    assert.notEqual(a1, b);
    assert.equal(running(), 2);
    await pool.closeAll();
  });

  it('gives each legacy session its own instance with isolation session, and shares one with isolation shared', async () => {
    const session = fixture({ isolation: 'session' });
    const s1 = await session.pool.get(caller('s1', 'alice', true), 'up');
    const s2 = await session.pool.get(caller('s2', 'alice', true), 'up');
    assert.notEqual(s1, s2);
    await session.pool.closeAll();
    const shared = fixture({ isolation: 'shared' });
    const x = await shared.pool.get(caller('s1', 'alice', true), 'up');
    const y = await shared.pool.get(caller('s2', 'bob', true), 'up');
    assert.equal(x, y);
    await shared.pool.closeAll();
  });

  it("tells only a session's own instance what its client can do, and refuses requests from one serving many", async () => {
    const own = fixture({ isolation: 'session' });
    const asked: string[] = [];
    const sink: RelatedSink = {
      notify() {},
      request: async (m) => {
        asked.push(m.method);
        return { jsonrpc: '2.0', id: m.id, result: { roots: [] } };
      },
    };
    await own.pool.get(caller('s1', 'alice', true, sink), 'up');
    assert.deepEqual(own.spawned[0]!.initializedWith?.capabilities, { roots: { listChanged: true } });
    own.spawned[0]!.ask('roots/list');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(asked, ['roots/list']);
    await own.pool.closeAll();

    const many = fixture({ isolation: 'principal' });
    const answers: JsonRpcResponse[] = [];
    await many.pool.get(caller('s1', 'alice', true, sink), 'up');
    assert.deepEqual(many.spawned[0]!.initializedWith?.capabilities, {});
    const sent = many.spawned[0]!.send.bind(many.spawned[0]!);
    many.spawned[0]!.send = async (m) => {
      if ('error' in m || 'result' in m) answers.push(m as JsonRpcResponse);
      return sent(m);
    };
    many.spawned[0]!.ask('roots/list');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(asked, ['roots/list'], 'the client was not asked again');
    assert.equal(answers[0]?.error?.code, -32601);
    await many.pool.closeAll();
  });

  it("reaps a stateless caller's instance once idle for instanceIdleMs, and not before", async () => {
    const { pool, running, advance } = fixture();
    await pool.get(caller('modern:alice', 'alice', false), 'up');
    advance(59_999);
    assert.equal(await pool.sweep(), 0);
    assert.equal(running(), 1);
    advance(1);
    assert.equal(await pool.sweep(), 1);
    assert.equal(running(), 0);
    assert.equal(pool.live(), 0);
  });

  it('never reaps an instance a session holds; once the last holder is released its idle time starts', async () => {
    const { pool, running, advance } = fixture();
    await pool.get(caller('s1', 'alice', true), 'up');
    await pool.get(caller('s2', 'alice', true), 'up');
    advance(10 * 60_000);
    assert.equal(await pool.sweep(), 0);
    await pool.release('s1');
    await pool.release('s2');
    assert.equal(await pool.sweep(), 0, 'idle only from the release on');
    advance(60_000);
    assert.equal(await pool.sweep(), 1);
    assert.equal(running(), 0);
  });

  it("closes a session's own instances as soon as the session is released", async () => {
    const { pool, running } = fixture({ isolation: 'session' });
    await pool.get(caller('s1', 'alice', true), 'up');
    await pool.get(caller('s2', 'alice', true), 'up');
    await pool.release('s1');
    assert.equal(running(), 1);
    assert.equal(pool.live('alice'), 1);
  });

  it('refuses an instance over the per-caller cap with ERR_CAPACITY while every one is held, and spawns nothing', async () => {
    const { pool, spawned } = fixture({ isolation: 'session', limits: { instancesPerPrincipal: 2 } });
    await pool.get(caller('s1', 'alice', true), 'up');
    await pool.get(caller('s2', 'alice', true), 'up');
    await assert.rejects(pool.get(caller('s3', 'alice', true), 'up'), isCapacity);
    assert.equal(spawned.length, 2);
    await pool.get(caller('s4', 'bob', true), 'up');
    assert.equal(spawned.length, 3, 'another caller is still served');
    await pool.closeAll();
  });

  it('reclaims the oldest idle instance instead of refusing, and closes it before the new one starts', async () => {
    const { pool, spawned, running, advance } = fixture({ limits: { instancesTotal: 2 } });
    await pool.get(caller('modern:alice', 'alice', false), 'up');
    advance(1);
    await pool.get(caller('modern:bob', 'bob', false), 'up');
    await pool.get(caller('modern:carol', 'carol', false), 'up');
    assert.equal(spawned[0]!.closed, true, "alice's, the oldest idle, was reclaimed");
    assert.equal(running(), 2);
    await pool.closeAll();
  });

  it('refuses a caller needing more new instances than the caps leave, before starting any of them', async () => {
    const { pool, spawned } = fixture({ isolation: 'session', limits: { instancesPerPrincipal: 1 } });
    await pool.get(caller('s1', 'alice', true), 'up');
    pool.reserve(caller('s1', 'alice', true), ['up', 'up']);
    assert.throws(() => pool.reserve(caller('s2', 'alice', true), ['up']), isCapacity);
    assert.equal(spawned.length, 1);
    await pool.closeAll();
  });

  it('refuses over the total cap with ERR_CAPACITY when nothing is idle', async () => {
    const { pool } = fixture({ limits: { instancesTotal: 1 } });
    await pool.get(caller('s1', 'alice', true), 'up');
    await assert.rejects(pool.get(caller('s2', 'bob', true), 'up'), isCapacity);
    await pool.closeAll();
  });
});

describe('a session that has ended', () => {
  it('takes no upstream instance for a call still running when it closed', async () => {
    const { pool, spawned } = fixture({ isolation: 'session' });
    const agg = new Aggregator(pool, silentLogger, {
      recheck: async () => {
        throw new Error('no stream is opened here');
      },
      toolsListed: () => {},
      pins: {
        review: async () => {
          throw new Error('nothing is listed here');
        },
        isQuarantined: () => false,
      },
      now: Date.now,
    });
    const session = newSession({
      id: 's1',
      key: 'legacy:s1',
      principal: ANONYMOUS,
      era: 'legacy',
      protocolVersion: '2025-11-25',
    });
    await agg.connection(session, 'up');
    session.closed = true;
    await pool.release(session.key);
    await assert.rejects(agg.connection(session, 'up'), failsWith('ERR_SESSION_CLOSED'));
    assert.equal(pool.live(), 0);
    assert.equal(spawned.length, 1);
  });
});

describe('the session quota', () => {
  it('admits up to the cap per caller, refuses the next with ERR_CAPACITY, and admits again after a release', () => {
    const quota = new SessionQuota(2);
    quota.admit('s1', 'alice');
    quota.admit('s2', 'alice');
    quota.admit('s2', 'alice');
    assert.throws(() => quota.admit('s3', 'alice'), isCapacity);
    quota.admit('s4', 'bob');
    quota.release('s1');
    quota.admit('s3', 'alice');
    assert.equal(quota.held('alice'), 2);
    assert.equal(quota.held('bob'), 1);
  });
});

describe('the legacy GET stream', () => {
  it('fails a server request after the configured hold with ERR_CLIENT_STREAM_UNAVAILABLE when no stream opens', async () => {
    let gaveUp = '';
    const stream = new StandaloneStream(new ReplyBook(), {
      waitMs: 1,
      onGaveUp: (method) => {
        gaveUp = method;
      },
    });
    const response = await stream.request({ jsonrpc: '2.0', id: 'srv-1', method: 'roots/list' });
    assert.equal(response.id, 'srv-1');
    assert.equal(response.error?.code, JSONRPC.INTERNAL_ERROR);
    assert.deepEqual(response.error?.data, { reason: 'client_stream_unavailable' });
    assert.equal(gaveUp, 'roots/list');
    assert.equal(stream.waiting, 0);
  });

  it('fails a held request at once when its session closes', async () => {
    const stream = new StandaloneStream(new ReplyBook(), { waitMs: 600_000 });
    const pending = stream.request({ jsonrpc: '2.0', id: 'srv-2', method: 'roots/list' });
    assert.equal(stream.waiting, 1);
    stream.close();
    const response = await pending;
    assert.equal(response.id, 'srv-2');
    assert.equal(response.error?.message, 'Session closed');
  });
});
