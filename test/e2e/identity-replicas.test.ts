import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { StateConfig } from '../../src/state/config.ts';
import { openRevocationStore } from '../../src/state/open.ts';
import { initializeBody, PG_URL, post, probeUpstream, REDIS_URL, startAuthTestGateway } from '../helpers.ts';

const run = randomBytes(4).toString('hex');

const shared: [string, StateConfig, () => Promise<void>][] = [
  [
    'PostgreSQL',
    { store: 'postgres', url: PG_URL, prefix: `replica_${run}` },
    async () => {
      const c = new pg.Client(PG_URL);
      await c.connect();
      await c.query(`DROP TABLE IF EXISTS replica_${run}_revocations CASCADE`);
      await c.query(`DROP FUNCTION IF EXISTS replica_${run}_revocations_notify() CASCADE`);
      await c.end();
    },
  ],
  [
    'Redis',
    { store: 'redis', url: REDIS_URL, prefix: `replica:${run}:` },
    async () => {
      const r = new Redis(REDIS_URL);
      await r.del(`replica:${run}:revocations`);
      r.disconnect();
    },
  ],
];

for (const [name, state, cleanup] of shared) {
  describe(`two gateway replicas sharing revocations in ${name}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-replicas-'));
    after(async () => {
      await cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    it('refuses a token on every replica once one revocation is written', async () => {
      const config = { upstreams: { probe: probeUpstream() }, state };
      const a = await startAuthTestGateway(config, dir);
      const b = await startAuthTestGateway(config, dir);
      try {
        const { token, jti } = await a.token('agent-1', ['probe__echo']);
        const auth = { authorization: `Bearer ${token}` };
        assert.equal((await post(a.url, initializeBody(), auth)).status, 200);
        assert.equal((await post(b.url, initializeBody(), auth)).status, 200);
        const store = openRevocationStore(state, dir);
        await store.revoke({ kind: 'jti', value: jti, revokedAt: Date.now(), reason: 'test' });
        await store.close();
        // PostgreSQL replicas learn of it by notification: wait until each has (Redis reads on every check).
        await a.running.gateway.identity.revocations().sync();
        await b.running.gateway.identity.revocations().sync();
        assert.equal((await post(a.url, initializeBody(), auth)).status, 401);
        assert.equal((await post(b.url, initializeBody(), auth)).status, 401);
      } finally {
        await a.running.close();
        await b.running.close();
      }
    });
  });
}
