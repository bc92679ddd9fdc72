import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';
import { CredentialBroker } from '../../src/credentials/broker.ts';
import type {
  CredentialBackend,
  CredentialRequest,
  Issued,
  Lease,
  LeaseGranularity,
} from '../../src/credentials/types.ts';
import { PortcullisError } from '../../src/errors.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { openRecordStore } from '../../src/state/open.ts';
import type { RecordStore } from '../../src/state/records.ts';
import { PG_URL, REDIS_URL } from '../helpers.ts';

const run = randomBytes(4).toString('hex');
const dir = mkdtempSync(join(tmpdir(), 'portcullis-broker-'));
const T0 = 1_800_000_000_000;

/** A backend of our own interface that records what it issued and revoked; `hold` makes issue wait. */
class LedgerBackend implements CredentialBackend {
  readonly kind = 'ledger';
  readonly issued: Lease[] = [];
  readonly revoked: string[] = [];
  fail?: Error;
  hold?: Promise<void>;
  /** Issued leases claim this holder instead of the caller (a backend answering for someone else). */
  wrongHolder = false;
  /** As a token-exchange backend: a credential is derived from the caller's own token. */
  boundToSubjectToken = false;
  readonly granularity: LeaseGranularity;
  readonly clock: { now: number };
  readonly ttlMs: number;
  constructor(granularity: LeaseGranularity, clock: { now: number }, ttlMs = 60_000) {
    this.granularity = granularity;
    this.clock = clock;
    this.ttlMs = ttlMs;
  }
  async issue(req: CredentialRequest, leaseId: string): Promise<Issued> {
    if (this.hold) await this.hold;
    if (this.fail) throw this.fail;
    const lease: Lease = {
      id: leaseId,
      backend: this.kind,
      holder: this.wrongHolder ? 'someone-else' : req.principal,
      upstream: req.upstream,
      scope: `${req.upstream}:${req.tool ?? '*'}`,
      sessionKey: req.sessionKey,
      issuedAt: this.clock.now,
      expiresAt: this.clock.now + this.ttlMs,
    };
    this.issued.push(lease);
    return { lease, credential: { kind: 'headers', headers: { authorization: `Bearer ${leaseId}` } } };
  }
  async revoke(lease: Lease): Promise<void> {
    this.revoked.push(lease.id);
  }
}

interface Rig {
  broker: CredentialBroker;
  backend: LedgerBackend;
  journal: Record<string, unknown>[];
}

function rig(store: RecordStore, clock: { now: number }, backend: LedgerBackend, timeoutMs = 5000): Rig {
  const journal: Record<string, unknown>[] = [];
  const broker = new CredentialBroker({
    store,
    backends: new Map([['api', backend]]),
    journal: async (record) => journal.push(record),
    log: silentLogger,
    now: () => clock.now,
    timeoutMs,
    runTtlMs: 30_000,
  });
  return { broker, backend, journal };
}

const req = (over: Partial<CredentialRequest> = {}): CredentialRequest => ({
  principal: 'alice',
  subject: 'alice',
  upstream: 'api',
  tool: 'read',
  argsHash: 'a'.repeat(64),
  sessionKey: 's1',
  callId: `c-${randomBytes(3).toString('hex')}`,
  ...over,
});

const codeOf = (code: string) => (err: unknown) => err instanceof PortcullisError && err.code === code;

const stores: { name: string; open(): RecordStore; cleanup(): Promise<void> }[] = [
  {
    name: 'SQLite',
    open: () => openRecordStore({ store: 'sqlite', path: `state-${run}.db` }, dir),
    cleanup: async () => {},
  },
  {
    name: 'PostgreSQL',
    open: () => openRecordStore({ store: 'postgres', url: PG_URL, prefix: `brk${run}` }, dir),
    async cleanup() {
      const c = new pg.Client(PG_URL);
      await c.connect();
      await c.query(`DROP TABLE IF EXISTS brk${run}_records`);
      await c.end();
    },
  },
  {
    name: 'Redis',
    open: () => openRecordStore({ store: 'redis', url: REDIS_URL, prefix: `test:brk:${run}:` }, dir),
    async cleanup() {
      const r = new Redis(REDIS_URL);
      const keys = await r.keys(`test:brk:${run}:*`);
      if (keys.length > 0) await r.del(...keys);
      r.disconnect();
    },
  },
];

after(async () => {
  for (const s of stores) await s.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('the credential broker', () => {
  const store = stores[0]!.open();
  after(() => store.close());

  it('records the lease in the store and the audit log before it hands the credential out', async () => {
    const clock = { now: T0 };
    const { broker, journal } = rig(store, clock, new LedgerBackend('call', clock));
    const got = await broker.credentialFor(req());
    const rec = await store.get('lease', got.leaseId);
    assert.equal(rec?.status, 'active');
    assert.equal(rec?.expiresAt, T0 + 60_000);
    assert.equal((rec!.body as { lease: Lease }).lease.holder, 'alice');
    const issued = journal.find((r) => r.event === 'issued');
    assert.equal(issued?.type, 'lease');
    assert.equal(issued?.leaseId, got.leaseId);
    assert.deepEqual(got.credential, {
      kind: 'headers',
      headers: { authorization: `Bearer ${got.leaseId}` },
    });
    assert.ok(
      !JSON.stringify(journal).includes(`Bearer ${got.leaseId}`),
      'the credential never reaches the log',
    );
    await broker.close();
  });

  it('denies the call and revokes what the backend issued when the lease cannot be recorded', async () => {
    const clock = { now: T0 };
    const closed = openRecordStore({ store: 'sqlite', path: `closed-${run}.db` }, dir);
    const backend = new LedgerBackend('call', clock);
    const { broker } = rig(closed, clock, backend);
    await broker.start();
    await closed.close();
    await assert.rejects(broker.credentialFor(req()), codeOf('ERR_STATE_UNAVAILABLE'));
    assert.equal(backend.issued.length, 1);
    assert.deepEqual(backend.revoked, [backend.issued[0]!.id]);
  });

  it('denies with ERR_CREDENTIAL_UNAVAILABLE when the backend throws, and never hands out anything else', async () => {
    const clock = { now: T0 };
    const backend = new LedgerBackend('call', clock);
    backend.fail = new Error('connection refused');
    const { broker, journal } = rig(store, clock, backend);
    await assert.rejects(broker.credentialFor(req()), codeOf('ERR_CREDENTIAL_UNAVAILABLE'));
    assert.equal(journal.filter((r) => r.event === 'issued').length, 0);
    await broker.close();
  });

  it('passes a token-exchange refusal on with its own code rather than as ERR_CREDENTIAL_UNAVAILABLE', async () => {
    const clock = { now: T0 };
    const backend = new LedgerBackend('call', clock);
    backend.fail = new PortcullisError('ERR_TOKEN_EXCHANGE_DENIED', 'token exchange refused: invalid_grant');
    const { broker, journal } = rig(store, clock, backend);
    await assert.rejects(broker.credentialFor(req()), codeOf('ERR_TOKEN_EXCHANGE_DENIED'));
    assert.equal(journal.filter((r) => r.event === 'issued').length, 0);
    await broker.close();
  });

  it('denies with ERR_CREDENTIAL_UNAVAILABLE when the backend is slower than the timeout, and revokes its late answer', async () => {
    const clock = { now: T0 };
    const backend = new LedgerBackend('call', clock);
    let release!: () => void;
    backend.hold = new Promise((resolve) => {
      release = resolve;
    });
    const { broker } = rig(store, clock, backend, 50);
    await assert.rejects(broker.credentialFor(req()), codeOf('ERR_CREDENTIAL_UNAVAILABLE'));
    const revokedLate = new Promise<void>((resolve) => {
      const original = backend.revoke.bind(backend);
      backend.revoke = async (lease) => {
        await original(lease);
        resolve();
      };
    });
    release();
    await revokedLate;
    assert.deepEqual(backend.revoked, [backend.issued[0]!.id]);
    await broker.close();
  });

  it('refuses a lease the backend issued for someone else', async () => {
    const clock = { now: T0 };
    const backend = new LedgerBackend('call', clock);
    backend.wrongHolder = true;
    const { broker } = rig(store, clock, backend);
    await assert.rejects(broker.credentialFor(req()), codeOf('ERR_CREDENTIAL_UNAVAILABLE'));
    assert.deepEqual(backend.revoked, [backend.issued[0]!.id]);
    await broker.close();
  });

  it('issues a new credential for every call of a per-call backend', async () => {
    const clock = { now: T0 };
    const { broker, backend } = rig(store, clock, new LedgerBackend('call', clock));
    const a = await broker.credentialFor(req());
    const b = await broker.credentialFor(req());
    assert.notEqual(a.leaseId, b.leaseId);
    assert.equal(backend.issued.length, 2);
    await broker.close();
  });

  it('reuses a per-principal lease for the same caller while it has life left, never for another caller', async () => {
    const clock = { now: T0 };
    const { broker, backend } = rig(store, clock, new LedgerBackend('principal', clock));
    const [a, b] = await Promise.all([
      broker.credentialFor(req()),
      broker.credentialFor(req({ sessionKey: 's2' })),
    ]);
    assert.equal(a.leaseId, b.leaseId, 'concurrent calls of one caller share one issue');
    const bob = await broker.credentialFor(req({ principal: 'bob', subject: 'bob' }));
    assert.notEqual(bob.leaseId, a.leaseId);
    clock.now += 50_000; // less than a quarter of its life left
    const c = await broker.credentialFor(req());
    assert.notEqual(c.leaseId, a.leaseId);
    assert.equal(backend.issued.length, 3);
    await broker.close();
  });

  it("shares a credential derived from the caller's token only among calls with that very token", async () => {
    const clock = { now: T0 };
    const exchanging = new LedgerBackend('principal', clock);
    exchanging.boundToSubjectToken = true;
    const { broker, backend } = rig(store, clock, exchanging);
    const first = await broker.credentialFor(req({ subjectToken: 'token-1' }));
    const again = await broker.credentialFor(req({ subjectToken: 'token-1' }));
    assert.equal(again.leaseId, first.leaseId, 'the same token shares');
    const refreshed = await broker.credentialFor(req({ subjectToken: 'token-2' }));
    assert.notEqual(refreshed.leaseId, first.leaseId, 'a refreshed token is not served the old one');
    assert.equal(backend.issued.length, 2);
    await broker.close();
  });

  it('revokes leases past expiry on sweep: the record says revoked and the log says why', async () => {
    const clock = { now: T0 };
    const { broker, backend, journal } = rig(store, clock, new LedgerBackend('call', clock));
    const old = await broker.credentialFor(req());
    clock.now += 30_000;
    const young = await broker.credentialFor(req());
    clock.now += 30_000;
    assert.equal(await broker.sweep(), 1);
    assert.deepEqual(backend.revoked, [old.leaseId]);
    assert.equal((await store.get('lease', old.leaseId))?.status, 'revoked');
    assert.equal((await store.get('lease', young.leaseId))?.status, 'active');
    const revoked = journal.find((r) => r.event === 'revoked');
    assert.equal(revoked?.leaseId, old.leaseId);
    assert.equal(revoked?.reason, 'expired');
    await broker.close();
  });

  it("revokes a session's leases when it ends, and leaves a per-principal lease to its other sessions", async () => {
    const clock = { now: T0 };
    const perCall = new LedgerBackend('call', clock);
    const perPrincipal = new LedgerBackend('principal', clock);
    const journal: Record<string, unknown>[] = [];
    const broker = new CredentialBroker({
      store,
      backends: new Map<string, CredentialBackend>([
        ['api', perCall],
        ['db', perPrincipal],
      ]),
      journal: async (r) => journal.push(r),
      log: silentLogger,
      now: () => clock.now,
    });
    const call = await broker.credentialFor(req({ sessionKey: 'ending' }));
    const other = await broker.credentialFor(req({ sessionKey: 'staying' }));
    const role = await broker.credentialFor(req({ upstream: 'db', sessionKey: 'ending' }));
    assert.equal(await broker.endSession('ending'), 1);
    assert.deepEqual(perCall.revoked, [call.leaseId]);
    assert.deepEqual(perPrincipal.revoked, []);
    assert.equal((await store.get('lease', other.leaseId))?.status, 'active');
    assert.equal((await store.get('lease', role.leaseId))?.status, 'active');
    assert.equal(journal.find((r) => r.event === 'revoked')?.reason, 'session-end');
    await broker.close();
    assert.equal((await store.get('lease', role.leaseId))?.status, 'revoked', 'close revokes what is left');
  });
});

for (const subject of stores) {
  describe(`reaping after a crash (${subject.name})`, () => {
    it("revokes a dead run's leases on the next start, and leaves a live replica's alone", async () => {
      const clock = { now: T0 };
      const stores = [subject.open(), subject.open(), subject.open()];
      try {
        const crashed = rig(stores[0]!, clock, new LedgerBackend('principal', clock, 3_600_000));
        const live = rig(stores[1]!, clock, new LedgerBackend('principal', clock, 3_600_000));
        // The first run dies without closing; the other started later and its heartbeat is still fresh.
        const orphan = await crashed.broker.credentialFor(req());
        clock.now += 15_000;
        const kept = await live.broker.credentialFor(req({ principal: 'bob', subject: 'bob' }));
        clock.now += 25_000;
        const next = rig(stores[2]!, clock, new LedgerBackend('principal', clock, 3_600_000));
        await next.broker.start();
        assert.equal((await stores[2]!.get('lease', orphan.leaseId))?.status, 'revoked');
        assert.deepEqual(next.backend.revoked, [orphan.leaseId]);
        assert.equal(next.journal.find((r) => r.event === 'revoked')?.reason, 'reaped');
        assert.equal((await stores[2]!.get('lease', kept.leaseId))?.status, 'active');
        assert.deepEqual(live.backend.revoked, []);
        // Any replica's sweep reaps too: here there is nothing left for it.
        assert.equal(await live.broker.sweep(), 0);
        await next.broker.close();
        await live.broker.close();
      } finally {
        for (const s of stores) await s.close();
      }
    });

    it('does not reap a run that is still within its heartbeat', async () => {
      const clock = { now: T0 };
      const stores = [subject.open(), subject.open()];
      try {
        const first = rig(stores[0]!, clock, new LedgerBackend('principal', clock, 3_600_000));
        const lease = await first.broker.credentialFor(req({ principal: 'carol', subject: 'carol' }));
        clock.now += 10_000;
        const second = rig(stores[1]!, clock, new LedgerBackend('principal', clock, 3_600_000));
        await second.broker.start();
        assert.equal((await stores[1]!.get('lease', lease.leaseId))?.status, 'active');
        await second.broker.close();
        await first.broker.close();
        assert.equal((await stores[1]!.get('lease', lease.leaseId))?.status, 'revoked');
      } finally {
        for (const s of stores) await s.close();
      }
    });
  });
}
