import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { isDeepFrozen } from '../../src/freeze.ts';
import { ANONYMOUS } from '../../src/identity/principal.ts';
import type { JsonObject, JsonRpcMessage, JsonRpcRequest } from '../../src/jsonrpc.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { newSession } from '../../src/session.ts';
import { Aggregator } from '../../src/upstream/aggregate.ts';
import { limitsSchema } from '../../src/upstream/config.ts';
import type { RelatedSink } from '../../src/upstream/connection.ts';
import { KeptToolLists } from '../../src/upstream/kept-tool-lists.ts';
import { UpstreamPool } from '../../src/upstream/pool.ts';
import type { MessageTransport } from '../../src/upstream/transport.ts';
import { failsWith } from '../helpers.ts';

/** An in-memory legacy upstream listing `tools` over two pages; counts the lists it answers. */
class ListingUpstream implements MessageTransport {
  onmessage?: (m: JsonRpcMessage) => void;
  onclose?: () => void;
  onerror?: (e: Error) => void;
  lists = 0;
  /** The next second page answers with an error instead. */
  failSecondPage = false;
  description = 'Reads a note.';
  /** More tools on the second page. */
  extra: JsonObject[] = [];
  async start(): Promise<void> {}
  async close(): Promise<void> {}
  async send(message: JsonRpcMessage): Promise<void> {
    const req = message as JsonRpcRequest;
    if (req.method === 'initialize') {
      this.reply(req, {
        protocolVersion: '2025-11-25',
        capabilities: { tools: { listChanged: true } },
        serverInfo: { name: 'listing' },
      });
    } else if (req.method === 'server/discover') {
      this.send0({ jsonrpc: '2.0', id: req.id, error: { code: -32601, message: 'no' } });
    } else if (req.method === 'tools/list') this.list(req);
  }
  /** notifications/tools/list_changed, sent unprompted. */
  announceChange(): void {
    this.onmessage?.({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
  }
  private list(req: JsonRpcRequest): void {
    const cursor = (req.params as { cursor?: string } | undefined)?.cursor;
    if (cursor === undefined) {
      this.lists++;
      this.reply(req, { tools: [this.tool('read')], nextCursor: 'p2' });
    } else if (this.failSecondPage) {
      this.failSecondPage = false;
      this.send0({ jsonrpc: '2.0', id: req.id, error: { code: -32603, message: 'page lost' } });
    } else this.reply(req, { tools: [this.tool('write'), ...this.extra] });
  }
  private tool(name: string): JsonObject {
    return { name, description: this.description, inputSchema: { type: 'object' } };
  }
  private reply(req: JsonRpcRequest, result: Record<string, unknown>): void {
    this.send0({ jsonrpc: '2.0', id: req.id, result });
  }
  private send0(m: JsonRpcMessage): void {
    queueMicrotask(() => this.onmessage?.(m));
  }
}

const NO_CLIENT: RelatedSink = {
  notify() {},
  request: async (m) => ({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'no' } }),
};

const pools: UpstreamPool[] = [];
after(async () => {
  await Promise.all(pools.map((p) => p.closeAll()));
});

/** An aggregator over one ListingUpstream, its clock in the test's hands, counting pin reviews. */
function fixture(toolListCacheMs: number) {
  const upstream = new ListingUpstream();
  let clock = 1_000_000;
  let reviews = 0;
  /** When false, the pins cannot be checked: the upstream is left out of the review's answer. */
  let pinsReadable = true;
  const pool = new UpstreamPool(
    [
      {
        name: 'notes',
        prefix: 'notes',
        timeoutMs: 5_000,
        toolListCacheMs,
        restart: { initialDelayMs: 10, maxDelayMs: 100 },
        isolation: 'principal',
        createTransport: async () => upstream,
      },
    ],
    silentLogger,
    { limits: limitsSchema.parse({}), now: () => clock },
  );
  pools.push(pool);
  const agg = new Aggregator(pool, silentLogger, {
    recheck: async () => {},
    toolsListed: () => {},
    pins: {
      review: async (listings) => {
        reviews++;
        return new Map(pinsReadable ? listings.map((l) => [l.upstream, [...l.tools]]) : []);
      },
      isQuarantined: () => false,
    },
    now: () => clock,
  });
  const session = newSession({
    id: 's1',
    key: 'legacy:s1',
    principal: ANONYMOUS,
    era: 'legacy',
    protocolVersion: '2025-11-25',
  });
  const list = async (params?: JsonObject) => agg.list(session, 'tools/list', params, NO_CLIENT);
  const names = async () => (await list()).map(({ item }) => item.name);
  const call = async () =>
    agg.toolConnection(session, 'notes', { exposed: 'notes__read', original: 'read' }, NO_CLIENT);
  return {
    upstream,
    list,
    names,
    call,
    pinsUnreadable: () => {
      pinsReadable = false;
    },
    reviews: () => reviews,
    advance: (ms: number) => {
      clock += ms;
    },
  };
}

describe("an upstream connection's kept tools/list answer", () => {
  it('answers the next list without asking the upstream, its pins still checked on every list', async () => {
    const f = fixture(30_000);
    assert.deepEqual(await f.names(), ['notes__read', 'notes__write']);
    f.advance(29_999);
    assert.deepEqual(await f.names(), ['notes__read', 'notes__write']);
    assert.equal(f.upstream.lists, 1);
    assert.equal(f.reviews(), 2);
  });

  it('is deep-frozen, and so is each item as listed, made once for every list', async () => {
    const f = fixture(30_000);
    const first = await f.list();
    const again = await f.list();
    for (const { item } of first) assert.equal(isDeepFrozen(item), true);
    assert.deepEqual(
      first.map(({ item }) => item),
      again.map(({ item }) => item),
    );
    assert.equal(first[0]?.item, again[0]?.item);
  });

  it('asks the upstream again once it is toolListCacheMs old', async () => {
    const f = fixture(30_000);
    await f.list();
    f.advance(30_000);
    f.upstream.description = 'Reads a note, and more.';
    const listed = await f.list();
    assert.equal(f.upstream.lists, 2);
    assert.equal(listed[0]?.item.description, 'Reads a note, and more.');
  });

  it('asks the upstream again after it announces notifications/tools/list_changed', async () => {
    const f = fixture(30_000);
    await f.list();
    f.upstream.description = 'Changed.';
    f.upstream.announceChange();
    const listed = await f.list();
    assert.equal(f.upstream.lists, 2);
    assert.equal(listed[1]?.item.description, 'Changed.');
  });

  it('is not kept when a page of it failed: the next list asks the upstream again', async () => {
    const f = fixture(30_000);
    f.upstream.failSecondPage = true;
    assert.deepEqual(await f.names(), ['notes__read']);
    assert.deepEqual(await f.names(), ['notes__read', 'notes__write']);
    assert.equal(f.upstream.lists, 2);
  });

  it('is never kept with toolListCacheMs 0: every list asks the upstream', async () => {
    const f = fixture(0);
    await f.list();
    await f.list();
    await f.list();
    assert.equal(f.upstream.lists, 3);
  });

  it('is not used when the clock went back before it was asked for', async () => {
    const f = fixture(30_000);
    await f.list();
    f.advance(-1);
    await f.list();
    assert.equal(f.upstream.lists, 2);
  });

  it('is kept per request asked: other params ask the upstream, a new progress token does not', async () => {
    const f = fixture(30_000);
    await f.list({ _meta: { progressToken: 1 } });
    await f.list({ _meta: { progressToken: 2 } });
    assert.equal(f.upstream.lists, 1);
    await f.list({ filter: 'mine' });
    assert.equal(f.upstream.lists, 2);
    await f.list({ filter: 'mine', _meta: { progressToken: 3 } });
    await f.list();
    assert.equal(f.upstream.lists, 2);
  });
});

describe('a tools/call through the aggregator', () => {
  it('lists the tools first on a new connection and after a list_changed, and not in between', async () => {
    const f = fixture(0);
    await f.call();
    assert.equal(f.upstream.lists, 1);
    await f.call();
    assert.equal(f.upstream.lists, 1);
    f.upstream.announceChange();
    await f.call();
    assert.equal(f.upstream.lists, 2);
  });

  it('is refused with ERR_UPSTREAM_UNAVAILABLE when the tools could not all be listed, or their pins not read', async () => {
    const partial = fixture(30_000);
    partial.upstream.failSecondPage = true;
    await assert.rejects(partial.call(), failsWith('ERR_UPSTREAM_UNAVAILABLE'));
    await partial.call();
    const unread = fixture(30_000);
    unread.pinsUnreadable();
    await assert.rejects(unread.call(), failsWith('ERR_UPSTREAM_UNAVAILABLE'));
    assert.deepEqual(await unread.names(), []);
  });
});

describe('names as listed', () => {
  it('hide every item whose exposed names collide, and any whose name holds invisible characters', async () => {
    const f = fixture(0);
    f.upstream.extra = [
      { name: 'read', description: 'A second read.', inputSchema: { type: 'object' } },
      { name: 'note\u202e', description: 'Looks like note.', inputSchema: { type: 'object' } },
      { name: 'plain', description: 'Plain.', inputSchema: { type: 'object' } },
    ];
    assert.deepEqual(await f.names(), ['notes__write', 'notes__plain']);
  });
});

describe('kept tool lists', () => {
  const tools = (name: string): JsonObject[] => [{ name }];

  it('never keep an answer whose fetch began before a change, even one that ends after a newer fetch', () => {
    let clock = 0;
    const lists = new KeptToolLists(30_000, () => clock);
    const before = lists.begin(undefined, 0);
    clock = 5;
    const after = lists.begin(undefined, 1);
    lists.settle(after, 1, tools('new'), true);
    lists.settle(before, 1, tools('old'), true);
    assert.deepEqual(lists.get(undefined, 1), [{ name: 'new' }]);
  });

  it('keep the answer of the later fetch when two of one epoch end out of order', () => {
    let clock = 0;
    const lists = new KeptToolLists(30_000, () => clock);
    const first = lists.begin(undefined, 0);
    clock = 5;
    const second = lists.begin(undefined, 0);
    lists.settle(second, 0, tools('second'), true);
    lists.settle(first, 0, tools('first'), true);
    assert.deepEqual(lists.get(undefined, 0), [{ name: 'second' }]);
  });

  it('drop what was kept when a later fetch of the same request is incomplete', () => {
    let clock = 0;
    const lists = new KeptToolLists(30_000, () => clock);
    lists.settle(lists.begin(undefined, 0), 0, tools('a'), true);
    clock = 5;
    lists.settle(lists.begin(undefined, 0), 0, tools('partial'), false);
    assert.equal(lists.get(undefined, 0), undefined);
  });

  it('keep at most 16 requests, the oldest going first', () => {
    const lists = new KeptToolLists(30_000, () => 0);
    for (let i = 0; i < 17; i++) lists.settle(lists.begin({ n: i }, 0), 0, tools(`t${i}`), true);
    assert.equal(lists.get({ n: 0 }, 0), undefined);
    assert.deepEqual(lists.get({ n: 1 }, 0), [{ name: 't1' }]);
    assert.deepEqual(lists.get({ n: 16 }, 0), [{ name: 't16' }]);
  });
});
