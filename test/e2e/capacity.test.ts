import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { auditSchema } from '../../src/audit/config.ts';
import { openAuditStore } from '../../src/audit/open.ts';
import { JSONRPC } from '../../src/errors.ts';
import { httpClient, initializeBody, post, probeUpstream, startAuthTestGateway, textOf } from '../helpers.ts';

/** Live (not zombie) child processes of this process running the probe fixture: the gateway runs in-process. */
function probeProcesses(): number {
  let n = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) !== process.pid || state === 'Z') continue;
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('probe-server')) n++;
    } catch {
      // the process ended while we looked
    }
  }
  return n;
}

/** `count` legacy initializes with one token, `batch` at a time. */
async function initializeMany(url: string, token: string, count: number, batch = 25) {
  const results: Awaited<ReturnType<typeof post>>[] = [];
  for (let i = 0; i < count; i += batch) {
    const n = Math.min(batch, count - i);
    const round = Array.from({ length: n }, (_, j) =>
      post(url, initializeBody(i + j), { authorization: `Bearer ${token}` }),
    );
    results.push(...(await Promise.all(round)));
  }
  return results;
}

async function auditedErrors(auditPath: string, dir: string): Promise<string[]> {
  const store = await openAuditStore({ config: auditSchema.parse({ path: auditPath }), baseDir: dir });
  try {
    const head = await store.head();
    const all = (await store.entries(0, head.size)).map((e) => JSON.parse(e.leaf.toString()));
    return all.map((r) => r.error).filter((e): e is string => typeof e === 'string');
  } finally {
    await store.close();
  }
}

const rpcCode = (res: { json: unknown }) => (res.json as { error?: { code: number } }).error?.code;

for (const isolation of ['principal', 'session'] as const) {
  describe(`500 initialize calls with one token, isolation ${isolation}`, () => {
    const dir = mkdtempSync(join(tmpdir(), `portcullis-capacity-${isolation}-`));
    const auditPath = join(dir, 'audit.db');
    const limits = {
      sessionsPerPrincipal: 10,
      instancesPerPrincipal: 3,
      instancesTotal: 5,
      retryAfterSeconds: 7,
    };
    let gw: Awaited<ReturnType<typeof startAuthTestGateway>>;
    before(async () => {
      gw = await startAuthTestGateway(
        {
          upstreams: { probe: probeUpstream({ isolation }), other: probeUpstream({ isolation }) },
          audit: { path: auditPath },
          limits,
        },
        dir,
      );
    });
    after(() => gw.running.close());

    it('leave at most the configured upstream processes alive, refuse the rest with 503 and record it, and keep serving other callers', {
      timeout: 240_000,
    }, async () => {
      const { token } = await gw.token('flooder', ['probe__echo']);
      const results = await initializeMany(gw.url, token, 500);
      const admitted = results.filter((r) => r.status === 200);
      const refused = results.filter((r) => r.status === 503);
      assert.equal(admitted.length + refused.length, 500);
      // principal: one instance per upstream serves every session, so the session cap binds;
      // session: each session needs its own instance of both upstreams, so the instance cap does.
      assert.equal(admitted.length, isolation === 'principal' ? limits.sessionsPerPrincipal : 1);
      for (const r of refused) {
        assert.equal(rpcCode(r), JSONRPC.OVERLOADED);
        assert.equal(r.headers.get('retry-after'), '7');
      }
      const pool = gw.running.gateway.pool;
      const processes = probeProcesses();
      console.log(`isolation ${isolation}: ${processes} upstream processes after 500 initialize calls`);
      assert.equal(processes, pool.live());
      assert.ok(processes <= limits.instancesPerPrincipal, `${processes} processes`);
      assert.ok((await auditedErrors(auditPath, dir)).includes('ERR_CAPACITY'));

      const other = await httpClient(gw.url, 'legacy', {
        authorization: `Bearer ${(await gw.token('bystander', ['probe__echo'])).token}`,
      });
      assert.equal(
        textOf(await other.callTool({ name: 'probe__echo', arguments: { text: 'served' } })),
        'served',
      );
      assert.ok(probeProcesses() <= limits.instancesTotal);
      await other.close();
    });

    it('admits the caller again once a session is deleted or expires', async () => {
      const { token } = await gw.token('flooder', ['probe__echo']);
      const auth = { authorization: `Bearer ${token}` };
      const refusedNow = await post(gw.url, initializeBody(), auth);
      assert.equal(refusedNow.status, 503);
      // Every admitted session expires at once (none has a GET stream open).
      await gw.running.listener.sweepSessions(Date.now() + 24 * 3600_000);
      const again = await post(gw.url, initializeBody(), auth);
      assert.equal(again.status, 200);
      const id = again.headers.get('mcp-session-id')!;
      const del = await fetch(gw.url, { method: 'DELETE', headers: { ...auth, 'mcp-session-id': id } });
      assert.equal(del.status, 200);
      assert.equal((await post(gw.url, initializeBody(), auth)).status, 200);
    });
  });
}

describe('instances of stateless callers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-capacity-modern-'));
  let gw: Awaited<ReturnType<typeof startAuthTestGateway>>;
  before(async () => {
    gw = await startAuthTestGateway({ upstreams: { probe: probeUpstream() } }, dir);
  });
  after(() => gw.running.close());

  it('are reaped once idle, and their process ends', async () => {
    const { token } = await gw.token('stateless', ['probe__echo']);
    const client = await httpClient(gw.url, 'modern', { authorization: `Bearer ${token}` });
    assert.equal(textOf(await client.callTool({ name: 'probe__echo', arguments: { text: 'hi' } })), 'hi');
    await client.close();
    const pool = gw.running.gateway.pool;
    assert.equal(pool.live(), 1);
    assert.equal(probeProcesses(), 1);
    const idleMs = 5 * 60_000;
    assert.equal(await pool.sweep(Date.now() + idleMs + 1), 1);
    assert.equal(pool.live(), 0);
    assert.equal(probeProcesses(), 0);
  });
});
