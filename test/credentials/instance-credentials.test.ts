import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { CredentialBroker } from '../../src/credentials/broker.ts';
import { credentialsSchema, type PostgresRoleConfig } from '../../src/credentials/config.ts';
import type { InstanceCredentials } from '../../src/credentials/instance.ts';
import { brokeredInstanceCredentials } from '../../src/credentials/instance-backends.ts';
import { PostgresRoleBackend } from '../../src/credentials/postgres-role.ts';
import type { Lease } from '../../src/credentials/types.ts';
import type { JsonRpcMessage, JsonRpcRequest } from '../../src/jsonrpc.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { openRecordStore } from '../../src/state/open.ts';
import type { RecordStore, StoredRecord } from '../../src/state/records.ts';
import { type Isolation, limitsSchema } from '../../src/upstream/config.ts';
import { type PoolClient, UpstreamPool } from '../../src/upstream/pool.ts';
import type { MessageTransport } from '../../src/upstream/transport.ts';
import { failsWith, PG_URL } from '../helpers.ts';

const suffix = randomBytes(3).toString('hex');
const template = `pgi_${suffix}_ro`;
const prefix = `i${suffix}_`;
const dir = mkdtempSync(join(tmpdir(), 'portcullis-instance-'));

/** An in-memory upstream that answers the handshake; `closed` settles when the pool closes it. */
class HandshakeOnly implements MessageTransport {
  onmessage?: (m: JsonRpcMessage) => void;
  onclose?: () => void;
  private ended!: () => void;
  readonly closed = new Promise<void>((resolve) => {
    this.ended = resolve;
  });
  async start(): Promise<void> {}
  async send(message: JsonRpcMessage): Promise<void> {
    const req = message as JsonRpcRequest;
    const result =
      req.method === 'initialize'
        ? { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'fake' } }
        : undefined;
    if (req.method === 'server/discover') {
      queueMicrotask(() =>
        this.onmessage?.({ jsonrpc: '2.0', id: req.id, error: { code: -32601, message: 'no' } }),
      );
    } else if (result) queueMicrotask(() => this.onmessage?.({ jsonrpc: '2.0', id: req.id, result }));
  }
  async close(): Promise<void> {
    this.ended();
  }
}

const caller = (key: string, principal: string): PoolClient => ({
  key,
  principal,
  holds: true,
  client: { capabilities: {}, info: { name: key } },
  era: 'legacy',
  unrelated: { notify() {}, request: async (m) => ({ jsonrpc: '2.0', id: m.id, result: {} }) },
});

const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
const roleExists = async (role: string) =>
  (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1;
const roleOf = (env: Readonly<Record<string, string>>) =>
  decodeURIComponent(new URL(env.DATABASE_URL!).username);

describe('an upstream instance started with a role minted for it', () => {
  const backends: PostgresRoleBackend[] = [];
  const stores: RecordStore[] = [];

  /** A shared state store (one SQLite file per test unless `state` names one). */
  const openStore = (state = `state-${randomBytes(4).toString('hex')}.db`): RecordStore => {
    const store = openRecordStore({ store: 'sqlite', path: state }, dir);
    stores.push(store);
    return store;
  };

  /**
   * A pool of one upstream whose instances get roles from `adminUrl` through a
   * broker over `store`; what each was started with (and the audit log and the
   * store as they were when it started), and each revocation.
   */
  function fixture(
    opts: { isolation?: Isolation; adminUrl?: string; now?: () => number; store?: RecordStore } = {},
  ) {
    const cfg = credentialsSchema.parse({
      kind: 'postgres-role',
      adminUrl: 'env:UNUSED',
      grant: template,
      rolePrefix: prefix,
      per: opts.isolation ?? 'principal',
    }) as PostgresRoleConfig;
    const backend = new PostgresRoleBackend(cfg, {
      adminUrl: opts.adminUrl ?? PG_URL,
      upstream: 'db',
      ...(opts.now ? { now: opts.now } : {}),
    });
    backends.push(backend);
    const store = opts.store ?? openStore();
    const journal: Record<string, unknown>[] = [];
    const broker = new CredentialBroker({
      store,
      backends: new Map(),
      instanceBackends: new Map([['db', backend]]),
      journal: async (record) => journal.push(record),
      log: silentLogger,
      now: opts.now ?? Date.now,
      runTtlMs: 30_000,
    });
    const issuer = brokeredInstanceCredentials(broker, new Map([['db', backend]]), { log: silentLogger }).get(
      'db',
    )!;
    const revoked: Lease[] = [];
    const waiters: ((lease: Lease) => void)[] = [];
    const credentials: InstanceCredentials = {
      issueForInstance: (holder) => issuer.issueForInstance(holder),
      revoke: async (lease, why) => {
        await issuer.revoke(lease, why);
        revoked.push(lease);
        for (const w of waiters.splice(0)) w(lease);
      },
    };
    const started: {
      env: Readonly<Record<string, string>>;
      transport: HandshakeOnly;
      /** The audit records written before this instance was started. */
      logged: Record<string, unknown>[];
      /** Its lease's record in the state store, read as it was started. */
      recorded: Promise<StoredRecord | undefined>;
    }[] = [];
    const pool = new UpstreamPool(
      [
        {
          name: 'db',
          prefix: 'db',
          timeoutMs: 5_000,
          toolListCacheMs: 0,
          restart: { initialDelayMs: 10, maxDelayMs: 100 },
          isolation: opts.isolation ?? 'principal',
          credentials,
          createTransport: (_holder, start) => {
            const transport = new HandshakeOnly();
            const logged = [...journal];
            const issued = logged.filter((r) => r.event === 'issued').at(-1);
            const recorded = issued ? store.get('lease', String(issued.leaseId)) : Promise.resolve(undefined);
            started.push({ env: start?.credential ?? {}, transport, logged, recorded });
            return transport;
          },
        },
      ],
      silentLogger,
      { limits: limitsSchema.parse({}) },
    );
    const nextRevoke = () => new Promise<Lease>((resolve) => waiters.push(resolve));
    return { pool, started, revoked, nextRevoke, broker, journal, store };
  }

  before(async () => {
    await admin.query(`CREATE ROLE ${template} NOLOGIN`);
  });

  after(async () => {
    for (const b of backends) await b.close().catch(() => {});
    for (const s of stores) await s.close();
    const left = await admin.query('SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)', [prefix]);
    for (const { rolname } of left.rows) await admin.query(`DROP ROLE ${pg.escapeIdentifier(rolname)}`);
    await admin.query(`DROP ROLE ${template}`);
    await admin.end();
  });

  it('gives each principal’s instance its own role in DATABASE_URL, and only that variable', async () => {
    const { pool, started } = fixture();
    await pool.get(caller('s1', 'alice'), 'db');
    await pool.get(caller('s2', 'alice'), 'db');
    await pool.get(caller('s3', 'bob'), 'db');
    assert.equal(started.length, 2);
    assert.deepEqual(
      started.map((s) => Object.keys(s.env)),
      [['DATABASE_URL'], ['DATABASE_URL']],
    );
    const [alice, bob] = started.map((s) => roleOf(s.env));
    assert.notEqual(alice, bob);
    for (const role of [alice!, bob!]) assert.equal(await roleExists(role), true);
    await pool.closeAll();
    for (const role of [alice!, bob!]) assert.equal(await roleExists(role), false);
  });

  it('closes the instance and drops its role when the lease runs out, and starts the next with a new role', async () => {
    // Leases that end the moment they are issued: the expiry timer fires at once.
    const { pool, started, nextRevoke } = fixture({ now: () => Date.now() - 900_000 });
    const revoked = nextRevoke();
    await pool.get(caller('s1', 'alice'), 'db');
    const first = started[0]!;
    await first.transport.closed;
    const lease = await revoked;
    assert.equal(lease.handle?.role, roleOf(first.env));
    assert.equal(await roleExists(roleOf(first.env)), false);
    assert.equal(pool.live(), 0);
    const again = nextRevoke();
    await pool.get(caller('s1', 'alice'), 'db');
    assert.notEqual(roleOf(started[1]!.env), roleOf(first.env));
    await again;
    await pool.closeAll();
  });

  it('drops a session instance’s role when its session is released', async () => {
    const { pool, started, revoked } = fixture({ isolation: 'session' });
    await pool.get(caller('s1', 'alice'), 'db');
    await pool.get(caller('s2', 'alice'), 'db');
    assert.equal(started.length, 2);
    await pool.release('s1');
    assert.deepEqual(
      revoked.map((l) => l.handle?.role),
      [roleOf(started[0]!.env)],
    );
    assert.equal(await roleExists(roleOf(started[0]!.env)), false);
    assert.equal(await roleExists(roleOf(started[1]!.env)), true);
    await pool.closeAll();
  });

  it('starts nothing and refuses with ERR_CREDENTIAL_UNAVAILABLE when no role can be minted', async () => {
    const { pool, started } = fixture({ adminUrl: 'postgres://postgres@127.0.0.1:1/test' });
    await assert.rejects(pool.get(caller('s1', 'alice'), 'db'), failsWith('ERR_CREDENTIAL_UNAVAILABLE'));
    assert.equal(started.length, 0);
    assert.equal(pool.live(), 0);
    await pool.closeAll();
  });

  it('records the lease in the state store and the audit log before the instance is started with it', async () => {
    const { pool, started, broker } = fixture();
    await pool.get(caller('s1', 'alice'), 'db');
    const [first] = started;
    const issued = first!.logged.filter((r) => r.type === 'lease' && r.event === 'issued');
    assert.equal(issued.length, 1);
    assert.deepEqual(
      { principal: issued[0]!.principal, upstream: issued[0]!.upstream, backend: issued[0]!.backend },
      { principal: { id: 'alice' }, upstream: 'db', backend: 'postgres-role' },
    );
    assert.equal(issued[0]!.scope, template);
    const record = await first!.recorded;
    assert.equal(record?.status, 'active');
    const lease = record?.body.lease as Lease;
    assert.equal(lease.id, issued[0]!.leaseId);
    assert.equal(lease.holder, 'alice');
    assert.equal(lease.handle?.role, roleOf(first!.env));
    assert.equal(record?.expiresAt, lease.expiresAt);
    await pool.closeAll();
    await broker.close();
  });

  it('records the revocation, reason session-end, when the session is released', async () => {
    const { pool, started, journal, store, broker } = fixture({ isolation: 'session' });
    await pool.get(caller('s1', 'alice'), 'db');
    const leaseId = String(journal.find((r) => r.event === 'issued')?.leaseId);
    await pool.release('s1');
    const revoked = journal.filter((r) => r.event === 'revoked');
    assert.deepEqual(
      revoked.map((r) => [r.leaseId, r.reason]),
      [[leaseId, 'session-end']],
    );
    assert.equal((await store.get('lease', leaseId))?.status, 'revoked');
    assert.equal(await roleExists(roleOf(started[0]!.env)), false);
    await broker.close();
  });

  it("drops the role of a crashed run's lease when the next run starts", async () => {
    const state = `state-${randomBytes(4).toString('hex')}.db`;
    const clock = { now: Date.now() };
    // The first run mints a role and dies: nothing is closed or revoked.
    const crashed = fixture({ store: openStore(state), now: () => clock.now });
    await crashed.pool.get(caller('s1', 'alice'), 'db');
    const orphan = roleOf(crashed.started[0]!.env);
    const leaseId = String(crashed.journal.find((r) => r.event === 'issued')?.leaseId);
    // Its heartbeat (30 s) lapses before the next run starts.
    clock.now += 40_000;
    const next = fixture({ store: openStore(state), now: () => clock.now });
    await next.broker.start();
    assert.equal(await roleExists(orphan), false);
    assert.equal((await next.store.get('lease', leaseId))?.status, 'revoked');
    const reaped = next.journal.find((r) => r.event === 'revoked');
    assert.deepEqual([reaped?.leaseId, reaped?.reason], [leaseId, 'reaped']);
    await next.broker.close();
  });

  it('drops, before the first role, a role of this upstream whose lease record is gone', async () => {
    // Minted two minutes ago (by its VALID UNTIL), by a run whose state store is lost.
    const earlier = fixture({ now: () => Date.now() - 120_000 });
    await earlier.pool.get(caller('s1', 'alice'), 'db');
    const unrecorded = roleOf(earlier.started[0]!.env);
    const live = fixture();
    await live.pool.get(caller('s2', 'bob'), 'db');
    assert.equal(await roleExists(unrecorded), false);
    assert.equal(await roleExists(roleOf(live.started[0]!.env)), true);
    await live.pool.closeAll();
    await live.broker.close();
  });
});
