import assert from 'node:assert/strict';
import { once } from 'node:events';
import http, { type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Principal } from '../../src/identity/principal.ts';
import { newSession } from '../../src/session.ts';
import { ReplyBook, StandaloneStream } from '../../src/transport/channel.ts';
import { LegacySessionTable } from '../../src/transport/legacy-sessions.ts';

const IDLE_MS = 1_000;
const principal = (id: string, tokenId = 'jti-1'): Principal => ({
  id,
  authMethod: 'jwt',
  scopes: [],
  claims: {},
  tokenId,
});

function fixture() {
  let clock = 10_000;
  const closed: string[] = [];
  const table = new LegacySessionTable({
    idleMs: IDLE_MS,
    close: async (session) => {
      closed.push(session.id);
    },
    now: () => clock,
  });
  const open = (id: string, who: Principal = principal('alice')) => {
    const replies = new ReplyBook();
    const stream = new StandaloneStream(replies, { waitMs: 60_000 });
    const session = newSession({
      id,
      key: `legacy:${id}`,
      principal: who,
      era: 'legacy',
      protocolVersion: '2025-11-25',
      unrelated: stream,
    });
    return table.add({ session, replies, stream });
  };
  return { table, closed, open, advance: (ms: number) => (clock += ms) };
}

const refusal = (code: string) => (err: unknown) => {
  assert.equal((err as { code?: string }).code, code);
  return true;
};

describe('LegacySessionTable', () => {
  /** A real GET stream for a session, from a real HTTP exchange. */
  let server: http.Server;
  let url: string;
  let attachTo: ((res: ServerResponse) => void) | undefined;
  before(async () => {
    server = http.createServer((_req, res) => attachTo?.(res));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('finds a session by id for the principal that opened it, taking on its fresher credential', () => {
    const { table, open } = fixture();
    const entry = open('s1');
    const renewed = principal('alice', 'jti-2');
    assert.equal(table.resolve('s1', renewed), entry);
    assert.equal(entry.session.principal, renewed);
  });

  it('refuses a missing id, an unknown id and another principal with their own codes', () => {
    const { table, open } = fixture();
    open('s1');
    assert.throws(() => table.resolve(undefined, principal('alice')), refusal('ERR_SESSION_REQUIRED'));
    assert.throws(() => table.resolve('nope', principal('alice')), refusal('ERR_SESSION_UNKNOWN'));
    assert.throws(() => table.resolve('s1', principal('mallory')), refusal('ERR_PRINCIPAL_MISMATCH'));
  });

  it('keeps the session bound to its principal after a refusal to another', () => {
    const { table, open } = fixture();
    const entry = open('s1');
    assert.throws(() => table.resolve('s1', principal('mallory')), refusal('ERR_PRINCIPAL_MISMATCH'));
    assert.equal(entry.session.principal.id, 'alice');
    assert.equal(table.resolve('s1', principal('alice')), entry);
  });

  it('sweeps a session idle longer than idleMs on the injected clock, and only that one', async () => {
    const { table, closed, open, advance } = fixture();
    open('old');
    advance(IDLE_MS / 2);
    open('fresh');
    await table.sweep();
    assert.deepEqual(closed, []);
    advance(IDLE_MS / 2 + 1);
    await table.sweep();
    assert.deepEqual(closed, ['old']);
    assert.equal(table.size, 1);
    assert.throws(() => table.resolve('old', principal('alice')), refusal('ERR_SESSION_UNKNOWN'));
  });

  it('counts a resolved session as seen, so use keeps it from the sweep', async () => {
    const { table, closed, open, advance } = fixture();
    open('s1');
    advance(IDLE_MS);
    table.resolve('s1', principal('alice'));
    advance(IDLE_MS / 2);
    await table.sweep();
    assert.deepEqual(closed, []);
  });

  it('sweeps no session whose GET stream is open, however idle', async () => {
    const { table, closed, open, advance } = fixture();
    const entry = open('streaming');
    const attached = new Promise<void>((resolve) => {
      attachTo = (res) => {
        entry.stream.attach(res);
        resolve();
      };
    });
    const get = fetch(url);
    await attached;
    advance(IDLE_MS * 10);
    await table.sweep();
    assert.deepEqual(closed, []);
    await table.end(entry);
    assert.equal(entry.stream.open, false);
    await (await get).body?.cancel();
  });

  it('ends a session once: forgets it, fails what awaits the client and closes it upstream', async () => {
    const { table, closed, open } = fixture();
    const entry = open('s1');
    const pending = entry.replies.open({ jsonrpc: '2.0', id: 'srv-1', method: 'roots/list' }, () => true);
    await Promise.all([table.end(entry), table.end(entry)]);
    assert.deepEqual(closed, ['s1']);
    assert.equal(table.size, 0);
    assert.equal((await pending).error?.message, 'Session closed');
  });

  it('closes every session it holds on closeAll', async () => {
    const { table, closed, open } = fixture();
    open('a');
    open('b', principal('bob'));
    await table.closeAll();
    assert.deepEqual(closed.sort(), ['a', 'b']);
    assert.equal(table.size, 0);
  });
});
