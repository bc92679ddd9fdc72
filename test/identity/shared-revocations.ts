/** Helpers for the shared revocation stores' tests: cleanup, a held reconnect, a proxy that can go silent. */
import { EventEmitter, once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { PG_URL } from '../helpers.ts';

/** Drops a revocation table and the function its trigger calls. */
export async function dropPgTable(table: string): Promise<void> {
  const c = new pg.Client(PG_URL);
  await c.connect();
  try {
    await c.query(`DROP TABLE IF EXISTS ${table} CASCADE`);
    await c.query(`DROP FUNCTION IF EXISTS ${table}_notify() CASCADE`);
  } finally {
    await c.end();
  }
}

/** Runs SQL on a connection of its own (another tool, or PostgreSQL's side of things). */
export async function sql(text: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client(PG_URL);
  await c.connect();
  try {
    return await c.query(text, values);
  } finally {
    await c.end();
  }
}

/**
 * A reconnect backoff the test releases by hand: `waiting()` resolves, with
 * the release, once the feed is waiting to reconnect.
 */
export function heldBackoff() {
  const events = new EventEmitter();
  return {
    backoff: (_attempt: number, signal: AbortSignal) =>
      new Promise<void>((resolve, reject) => {
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        events.emit('waiting', resolve);
      }),
    waiting: async (): Promise<() => void> => {
      const [release] = (await once(events, 'waiting')) as [() => void];
      return release;
    },
  };
}

/** A TCP proxy to `target` (a server's URL) that `freeze()` turns silent: connections stay open, nothing passes. */
export async function freezableProxy(target: string) {
  const sockets: Socket[] = [];
  let frozen = false;
  const server: Server = createServer((client) => {
    sockets.push(client);
    if (frozen) return;
    const to = new URL(target);
    const upstream = connect(Number(to.port), to.hostname);
    sockets.push(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const url = new URL(target);
  url.host = `127.0.0.1:${port}`;
  return {
    url: url.toString(),
    freeze() {
      frozen = true;
      for (const s of sockets) {
        s.unpipe();
        s.pause();
      }
    },
    async close() {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}
