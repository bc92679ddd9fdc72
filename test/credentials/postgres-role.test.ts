import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { credentialsSchema, type PostgresRoleConfig } from '../../src/credentials/config.ts';
import { PostgresRoleBackend } from '../../src/credentials/postgres-role.ts';
import type { CredentialRequest, Issued } from '../../src/credentials/types.ts';
import { failsWith, PG_URL } from '../helpers.ts';
import { type ScramPostgres, startScramPostgres } from './scram-postgres.ts';

const suffix = randomBytes(3).toString('hex');
const schemaA = `pgr_${suffix}_a`;
const schemaB = `pgr_${suffix}_b`;
const template = `pgr_${suffix}_ro`;
const prefix = `t${suffix}_`;
/** The reap test's own prefix: a reap takes every orphan of its prefix, other tests' too. */
const reapPrefix = `r${suffix}_`;

const config = (extra: Record<string, unknown> = {}): PostgresRoleConfig =>
  credentialsSchema.parse({
    kind: 'postgres-role',
    adminUrl: 'env:UNUSED',
    grant: template,
    rolePrefix: prefix,
    ...extra,
  }) as PostgresRoleConfig;

const request = (principal = 'alice'): CredentialRequest => ({
  principal,
  subject: principal,
  upstream: 'db',
  sessionKey: 's1',
  callId: 'c1',
});

const urlOf = (issued: Issued): string => {
  assert.equal(issued.credential.kind, 'env');
  return (issued.credential as { env: Record<string, string> }).env.DATABASE_URL!;
};

/** Connects as the minted role; the caller ends the client. */
async function connectAs(issued: Issued): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: urlOf(issued) });
  client.on('error', () => {});
  await client.connect();
  return client;
}

const sqlState = (code: string) => (err: unknown) => {
  assert.equal((err as { code?: string }).code, code, String(err));
  return true;
};

const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
const roleExists = async (role: string) =>
  (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1;

describe('postgres-role credentials against the real PostgreSQL', () => {
  const backends: PostgresRoleBackend[] = [];
  const backend = (
    extra: Record<string, unknown> = {},
    opts: { upstream?: string; now?: () => number } = {},
  ) => {
    const b = new PostgresRoleBackend(config(extra), {
      adminUrl: PG_URL,
      upstream: opts.upstream ?? 'db',
      ...opts,
    });
    backends.push(b);
    return b;
  };

  before(async () => {
    await admin.query(`
      CREATE SCHEMA ${schemaA}; CREATE SCHEMA ${schemaB};
      CREATE TABLE ${schemaA}.items (id int PRIMARY KEY, label text);
      INSERT INTO ${schemaA}.items VALUES (1, 'first'), (2, 'second');
      CREATE TABLE ${schemaB}.secrets (id int, value text);
      INSERT INTO ${schemaB}.secrets VALUES (1, 'hidden');
      CREATE ROLE ${template} NOLOGIN;
      GRANT USAGE ON SCHEMA ${schemaA} TO ${template};
      GRANT SELECT ON ALL TABLES IN SCHEMA ${schemaA} TO ${template};`);
  });

  after(async () => {
    for (const b of backends) await b.close();
    const left = await admin.query(
      'SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) OR starts_with(rolname, $2)',
      [prefix, reapPrefix],
    );
    for (const { rolname } of left.rows) {
      await admin.query(
        `DROP OWNED BY ${pg.escapeIdentifier(rolname)}; DROP ROLE ${pg.escapeIdentifier(rolname)}`,
      );
    }
    await admin.query(`DROP SCHEMA ${schemaA} CASCADE; DROP SCHEMA ${schemaB} CASCADE;
      DROP OWNED BY ${template}; DROP ROLE ${template}`);
    await admin.end();
  });

  it('mints a role that reads its template schema, while PostgreSQL refuses its writes and the other schema', async () => {
    const issued = await backend().issue(request(), 'lease-1');
    const role = issued.lease.handle!.role!;
    assert.ok(role.startsWith(prefix));
    assert.equal(issued.lease.backend, 'postgres-role');
    assert.equal(issued.lease.holder, 'alice');
    assert.equal(issued.lease.scope, template);
    assert.equal(issued.lease.expiresAt - issued.lease.issuedAt, 900_000);
    const stored = await admin.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [role]);
    assert.match(
      stored.rows[0].rolpassword,
      /^SCRAM-SHA-256\$4096:/,
      'the server got a verifier, not the password',
    );
    const client = await connectAs(issued);
    try {
      const me = await client.query('SELECT current_user AS me');
      assert.equal(me.rows[0].me, role);
      const rows = await client.query(`SELECT label FROM ${schemaA}.items ORDER BY id`);
      assert.deepEqual(
        rows.rows.map((r) => r.label),
        ['first', 'second'],
      );
      await assert.rejects(client.query(`INSERT INTO ${schemaA}.items VALUES (3, 'x')`), sqlState('42501'));
      await assert.rejects(client.query(`UPDATE ${schemaA}.items SET label = 'y'`), sqlState('42501'));
      await assert.rejects(client.query(`CREATE TABLE ${schemaA}.mine (id int)`), sqlState('42501'));
      await assert.rejects(client.query(`SELECT * FROM ${schemaB}.secrets`), sqlState('42501'));
    } finally {
      await client.end();
    }
  });

  it('gives each principal a role of its own, each with its own password', async () => {
    const b = backend();
    const [one, two] = [await b.issue(request('alice'), 'l-a'), await b.issue(request('bob'), 'l-b')];
    assert.notEqual(one.lease.handle!.role, two.lease.handle!.role);
    assert.notEqual(new URL(urlOf(one)).password, new URL(urlOf(two)).password);
    assert.equal(new URL(urlOf(one)).pathname, '/test');
  });

  it('cuts the open connection of a revoked role, drops the role, and revokes twice without fault', async () => {
    const b = backend();
    const issued = await b.issue(request(), 'lease-cut');
    const client = await connectAs(issued);
    const ended = new Promise((resolve) => client.once('end', resolve));
    await b.revoke(issued.lease);
    await ended;
    await assert.rejects(client.query('SELECT 1'));
    assert.equal(await roleExists(issued.lease.handle!.role!), false);
    const again = new pg.Client({ connectionString: urlOf(issued) });
    await assert.rejects(again.connect(), sqlState('28000'));
    await b.revoke(issued.lease);
  });

  it('never drops a role with its prefix that it did not mark as its own', async () => {
    const foreign = `${prefix}foreign`;
    await admin.query(`CREATE ROLE ${foreign} LOGIN`);
    const b = backend();
    const lease = { ...(await b.issue(request(), 'l-f')).lease, handle: { role: foreign } };
    await b.revoke(lease);
    assert.equal((await b.reap()).includes(foreign), false);
    assert.equal(await roleExists(foreign), true);
    await admin.query(`DROP ROLE ${foreign}`);
  });

  it('reaps after a crash the roles no active lease names and the expired ones, never those it holds', async () => {
    const own = { rolePrefix: reapPrefix };
    const crashed = backend(own);
    const orphan = await crashed.issue(request(), 'l-orphan');
    const stillLeased = await crashed.issue(request('bob'), 'l-active');
    const otherUpstream = await backend(own, { upstream: 'other' }).issue(request(), 'l-other');
    const hourAgo = () => Date.now() - 3_600_000;
    const expired = await backend({ ...own, ttlSeconds: 60 }, { upstream: 'other', now: hourAgo }).issue(
      request(),
      'l-expired',
    );
    const restarted = backend(own);
    const mine = await restarted.issue(request('carol'), 'l-mine');
    const role = (i: Issued) => i.lease.handle!.role!;
    const reaped = await restarted.reap(new Set([role(stillLeased)]));
    assert.deepEqual(reaped.sort(), [role(orphan), role(expired)].sort());
    for (const gone of [orphan, expired]) assert.equal(await roleExists(role(gone)), false);
    for (const kept of [stillLeased, otherUpstream, mine]) assert.equal(await roleExists(role(kept)), true);
  });

  it('fails closed with ERR_CREDENTIAL_UNAVAILABLE when the database is down', async () => {
    const closed = await listening(() => {});
    const { port } = closed.address() as { port: number };
    await new Promise((resolve) => closed.close(resolve));
    const down = new PostgresRoleBackend(config(), {
      adminUrl: `postgres://postgres@127.0.0.1:${port}/test`,
      upstream: 'db',
    });
    backends.push(down);
    await assert.rejects(down.issue(request(), 'l-down'), failsWith('ERR_CREDENTIAL_UNAVAILABLE'));
    await assert.rejects(down.reap(), failsWith('ERR_CREDENTIAL_UNAVAILABLE'));
  });

  it('fails closed with ERR_CREDENTIAL_UNAVAILABLE when the database never answers', async () => {
    const sockets: Socket[] = [];
    const silent = await listening((s) => sockets.push(s));
    const { port } = silent.address() as { port: number };
    const slow = new PostgresRoleBackend(config({ timeoutMs: 200 }), {
      adminUrl: `postgres://postgres@127.0.0.1:${port}/test`,
      upstream: 'db',
    });
    try {
      await assert.rejects(slow.issue(request(), 'l-slow'), failsWith('ERR_CREDENTIAL_UNAVAILABLE'));
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
      await slow.close();
    }
  });
});

describe('postgres-role credentials where PostgreSQL checks passwords', () => {
  let cluster: ScramPostgres;
  const tpl = 'reader';
  before(async () => {
    cluster = await startScramPostgres();
    const c = new pg.Client({ connectionString: cluster.adminUrl });
    await c.connect();
    await c.query(`CREATE TABLE public.notes (n text); INSERT INTO notes VALUES ('hello');
      CREATE ROLE ${tpl} NOLOGIN; GRANT SELECT ON notes TO ${tpl}`);
    await c.end();
  });
  after(() => cluster.close());

  const scramBackend = (now?: () => number) =>
    new PostgresRoleBackend(config({ grant: tpl, ttlSeconds: 60 }), {
      adminUrl: cluster.adminUrl,
      upstream: 'db',
      ...(now ? { now } : {}),
    });

  it('lets the minted password in and no other', async () => {
    const b = scramBackend();
    try {
      const issued = await b.issue(request(), 'l-pw');
      const client = await connectAs(issued);
      assert.equal((await client.query('SELECT n FROM notes')).rows[0].n, 'hello');
      await client.end();
      const wrong = new URL(urlOf(issued));
      wrong.password = 'not-the-password';
      await assert.rejects(new pg.Client({ connectionString: wrong.href }).connect(), sqlState('28P01'));
      await b.revoke(issued.lease);
    } finally {
      await b.close();
    }
  });

  it('is refused by PostgreSQL itself once VALID UNTIL has passed', async () => {
    const b = scramBackend(() => Date.now() - 120_000);
    try {
      const issued = await b.issue(request(), 'l-expired');
      assert.ok(issued.lease.expiresAt < Date.now());
      const login = new pg.Client({ connectionString: urlOf(issued) });
      await assert.rejects(login.connect(), sqlState('28P01'));
      await b.revoke(issued.lease);
    } finally {
      await b.close();
    }
  });
});

function listening(onConnection: (socket: Socket) => void): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer(onConnection);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}
