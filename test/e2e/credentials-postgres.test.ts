import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import pg from 'pg';
import { CredentialBroker } from '../../src/credentials/broker.ts';
import {
  CREDENTIAL_PLACEHOLDER,
  credentialsSchema,
  type PostgresRoleConfig,
} from '../../src/credentials/config.ts';
import { PostgresRoleBackend } from '../../src/credentials/postgres-role.ts';
import { JSONRPC } from '../../src/errors.ts';
import { type Logger, silentLogger } from '../../src/observability/log.ts';
import { openRecordStore } from '../../src/state/open.ts';
import type { RecordStore } from '../../src/state/records.ts';
import { NODE, PG_URL, serverEntry, startAuthTestGateway } from '../helpers.ts';

const suffix = randomBytes(3).toString('hex');
const schema = `pge_${suffix}_a`;
const other = `pge_${suffix}_b`;
const template = `pge_${suffix}_ro`;
const prefix = `e${suffix}_`;
const adminEnv = `PORTCULLIS_TEST_PGROLE_ADMIN_${suffix}`;
const deadEnv = `PORTCULLIS_TEST_PGROLE_DEAD_${suffix}`;

type Fields = Record<string, unknown>;

/** Every message and field the gateway logs, to show no connection string with a password is among them. */
function recordingLogger(): Logger & {
  lines: string[];
  next(prefix: string, match?: (fields: Fields) => boolean): Promise<Fields>;
} {
  const lines: string[] = [];
  const waiters: { prefix: string; match: (fields: Fields) => boolean; resolve: (fields: Fields) => void }[] =
    [];
  const seen = (msg: string, fields: Fields = {}) => {
    lines.push(`${msg} ${JSON.stringify(fields)}`);
    for (const w of waiters.filter((x) => msg.startsWith(x.prefix) && x.match(fields))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(fields);
    }
  };
  return {
    lines,
    debug: seen,
    info: seen,
    warn: seen,
    error: seen,
    next: (p, match = () => true) => new Promise((resolve) => waiters.push({ prefix: p, match, resolve })),
  };
}

const postgresUpstream = (isolation: 'principal' | 'session', adminUrl = `env:${adminEnv}`) => ({
  transport: 'stdio',
  command: NODE,
  args: [serverEntry('@modelcontextprotocol/server-postgres'), CREDENTIAL_PLACEHOLDER],
  // It speaks the PostgreSQL protocol to 127.0.0.1, which no HTTP egress proxy carries: the host's network.
  sandbox: { network: 'host' },
  isolation,
  credentials: { kind: 'postgres-role', adminUrl, grant: template, rolePrefix: prefix, per: isolation },
});

const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
const roleExists = async (role: string) =>
  (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1;

async function connect(url: string, token: string): Promise<{ client: V1Client; transport: V1Transport }> {
  const client = new V1Client({ name: 'pg-test', version: '1.0.0' });
  const transport = new V1Transport(new URL(url), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  return { client, transport };
}

/** Runs SQL through the upstream's `query` tool; the rows it answers with. */
async function query(client: V1Client, tool: string, sql: string): Promise<Record<string, unknown>[]> {
  const result = await client.callTool({ name: tool, arguments: { sql } });
  const text = (result.content as { type: string; text: string }[])[0]!.text;
  return JSON.parse(text) as Record<string, unknown>[];
}

const whoAmI = async (client: V1Client, tool = 'pg__query') =>
  String((await query(client, tool, 'SELECT current_user AS me'))[0]!.me);

describe('PostgreSQL dynamic roles through the gateway, with server-postgres from npm', () => {
  let gw: Awaited<ReturnType<typeof startAuthTestGateway>>;
  const log = recordingLogger();
  const crashed: { role: string; leaseId: string }[] = [];
  let records: RecordStore;
  const foreign = `${prefix}foreign`;
  const tools = ['pg__query', 'pgs__query', 'down__query'];

  before(async () => {
    await admin.query(`
      CREATE SCHEMA ${schema}; CREATE SCHEMA ${other};
      CREATE TABLE ${schema}.items (id int PRIMARY KEY, label text);
      INSERT INTO ${schema}.items VALUES (1, 'first'), (2, 'second');
      CREATE TABLE ${other}.secrets (value text); INSERT INTO ${other}.secrets VALUES ('hidden');
      CREATE ROLE ${template} NOLOGIN;
      GRANT USAGE ON SCHEMA ${schema} TO ${template};
      GRANT SELECT ON ALL TABLES IN SCHEMA ${schema} TO ${template};
      CREATE ROLE ${foreign} NOLOGIN;`);
    process.env[adminEnv] = PG_URL;
    process.env[deadEnv] = 'postgres://postgres@127.0.0.1:1/test';
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-pgroles-'));
    // A gateway run that crashed 40 s ago with two roles out, leased in the state store: minted, never revoked.
    const cfg = credentialsSchema.parse(postgresUpstream('principal').credentials) as PostgresRoleConfig;
    const then = () => Date.now() - 40_000;
    const store = openRecordStore({ store: 'sqlite', path: join(dir, 'state.db') }, dir);
    const before = new PostgresRoleBackend(cfg, { adminUrl: PG_URL, upstream: 'pg', now: then });
    const crashedRun = new CredentialBroker({
      store,
      backends: new Map(),
      instanceBackends: new Map([['pg', before]]),
      journal: async () => 0,
      log: silentLogger,
      now: then,
    });
    for (const who of ['alice', 'bob']) {
      const issued = await crashedRun.issueForInstance({
        principal: who,
        subject: who,
        upstream: 'pg',
        sessionKey: '',
        callId: '',
      });
      crashed.push({ role: issued.lease.handle!.role!, leaseId: issued.leaseId });
    }
    // And one whose lease record is lost, minted two minutes ago: the marker reap's to drop.
    const older = new PostgresRoleBackend(cfg, {
      adminUrl: PG_URL,
      upstream: 'pg',
      now: () => Date.now() - 120_000,
    });
    const lost = await older.issue(
      { principal: 'zed', subject: 'zed', upstream: 'pg', sessionKey: '', callId: '' },
      'lost-zed',
    );
    crashed.push({ role: lost.lease.handle!.role!, leaseId: 'lost-zed' });
    await Promise.all([before.close(), older.close(), store.close()]);
    const reaped = log.next('postgres roles reaped', (f) => f.upstream === 'pg');
    gw = await startAuthTestGateway(
      {
        upstreams: {
          pg: postgresUpstream('principal'),
          pgs: postgresUpstream('session'),
          down: postgresUpstream('principal', `env:${deadEnv}`),
        },
      },
      dir,
      log,
    );
    await reaped;
    records = openRecordStore({ store: 'sqlite', path: join(dir, 'state.db') }, dir);
  });

  after(async () => {
    await gw.running.close();
    await records.close();
    const left = await admin.query('SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)', [prefix]);
    for (const { rolname } of left.rows) await admin.query(`DROP ROLE ${pg.escapeIdentifier(rolname)}`);
    await admin.query(`DROP SCHEMA ${schema} CASCADE; DROP SCHEMA ${other} CASCADE;
      DROP OWNED BY ${template}; DROP ROLE ${template}`);
    await admin.end();
    delete process.env[adminEnv];
    delete process.env[deadEnv];
  });

  it('reaped at start the roles a crashed gateway left, and no role it did not mark', async () => {
    for (const { role } of crashed) assert.equal(await roleExists(role), false, role);
    assert.equal(await roleExists(foreign), true);
  });

  it("revoked the crashed run's leases in the state store, as reaped", async () => {
    for (const { leaseId } of crashed.slice(0, 2)) {
      const record = await records.get('lease', leaseId);
      assert.deepEqual([record?.status, record?.body.reason], ['revoked', 'reaped']);
    }
  });

  it('records a role lease in the state store before the instance starts, and its revocation at session end', async () => {
    const { client, transport } = await connect(gw.url, await gw.token('fay', tools).then((t) => t.token));
    const role = await whoAmI(client, 'pgs__query');
    const active = await records.find('lease', { status: ['active'], limit: 1000 });
    const mine = active.find((r) => (r.body.lease as { handle?: { role?: string } }).handle?.role === role);
    assert.ok(mine, 'the role has an active lease record');
    assert.deepEqual(
      [(mine.body.lease as { upstream: string }).upstream, mine.body.granularity],
      ['pgs', 'session'],
    );
    const revoked = log.next('upstream credential revoked');
    await transport.terminateSession();
    await client.close();
    await revoked;
    const after = await records.get('lease', mine.id);
    assert.deepEqual([after?.status, after?.body.reason], ['revoked', 'session-end']);
  });

  it('reads rows through the query tool as a role minted for the caller', async () => {
    const { client } = await connect(gw.url, await gw.token('alice', tools).then((t) => t.token));
    try {
      const rows = await query(
        client,
        'pg__query',
        `SELECT current_user AS me, label FROM ${schema}.items ORDER BY id`,
      );
      assert.deepEqual(
        rows.map((r) => r.label),
        ['first', 'second'],
      );
      const me = String(rows[0]!.me);
      assert.ok(me.startsWith(prefix), me);
      assert.equal(await roleExists(me), true);
    } finally {
      await client.close();
    }
  });

  it('has PostgreSQL refuse a write, even one that steps out of the read-only transaction, and the other schema', async () => {
    const { client } = await connect(gw.url, await gw.token('alice', tools).then((t) => t.token));
    try {
      await assert.rejects(
        query(client, 'pg__query', `COMMIT; INSERT INTO ${schema}.items VALUES (9, 'written')`),
        /permission denied for table items/,
      );
      await assert.rejects(query(client, 'pg__query', `SELECT * FROM ${other}.secrets`), /permission denied/);
      const written = await admin.query(`SELECT 1 FROM ${schema}.items WHERE id = 9`);
      assert.equal(written.rowCount, 0);
    } finally {
      await client.close();
    }
  });

  it('gives two principals two different roles', async () => {
    const alice = await connect(gw.url, await gw.token('alice', tools).then((t) => t.token));
    const bob = await connect(gw.url, await gw.token('bob', tools).then((t) => t.token));
    try {
      const [a, b] = [await whoAmI(alice.client), await whoAmI(bob.client)];
      assert.notEqual(a, b);
      assert.ok(a.startsWith(prefix) && b.startsWith(prefix));
    } finally {
      await alice.client.close();
      await bob.client.close();
    }
  });

  it('drops the role of a session instance when the session ends', async () => {
    const { client, transport } = await connect(gw.url, await gw.token('carol', tools).then((t) => t.token));
    const role = await whoAmI(client, 'pgs__query');
    assert.equal(await roleExists(role), true);
    const revoked = log.next('upstream credential revoked');
    await transport.terminateSession();
    await client.close();
    await revoked;
    assert.equal(await roleExists(role), false);
  });

  it('closes the instance when its lease expires: the role is dropped and the next call gets a new one', async () => {
    const { client } = await connect(gw.url, await gw.token('dave', tools).then((t) => t.token));
    try {
      const first = await whoAmI(client);
      // The gateway's own expiry check, run as if the 900 s lease had passed.
      await gw.running.gateway.pool.sweep(Date.now() + 901_000);
      assert.equal(await roleExists(first), false);
      const second = await whoAmI(client);
      assert.notEqual(second, first);
      assert.ok(second.startsWith(prefix));
    } finally {
      await client.close();
    }
  });

  it('denies the call with ERR_CREDENTIAL_UNAVAILABLE when the database that mints roles is down, and starts no upstream', async () => {
    const { client } = await connect(gw.url, await gw.token('erin', tools).then((t) => t.token));
    try {
      const live = gw.running.gateway.pool.live();
      const ended = log.next('call ended with error', (f) => f.method === 'tools/call');
      await assert.rejects(client.callTool({ name: 'down__query', arguments: { sql: 'SELECT 1' } }), {
        code: JSONRPC.DENIED,
        message: 'MCP error -32004: Service unavailable',
      });
      assert.equal((await ended).code, 'ERR_CREDENTIAL_UNAVAILABLE');
      assert.equal(gw.running.gateway.pool.live(), live);
    } finally {
      await client.close();
    }
  });

  it('puts no connection string with a password in the log, nor in the gateway process environment', () => {
    const withPassword = /postgres(?:ql)?:\/\/[^\s:@/"]+:[^\s@/"]+@/;
    assert.deepEqual(
      log.lines.filter((l) => withPassword.test(l)),
      [],
    );
    assert.equal(process.env.DATABASE_URL, undefined);
  });
});
