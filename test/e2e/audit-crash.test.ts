import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import pg from 'pg';
import { auditSchema } from '../../src/audit/config.ts';
import { openAuditStore } from '../../src/audit/open.ts';
import { startRecordUpstream } from '../fixtures/record-http-upstream.ts';
import { NODE, PERMIT_ALL_POLICY, PG_URL, probeUpstream, ROOT, runCli } from '../helpers.ts';

/**
 * `kill -9` of a gateway process at a random point under load, in each durability
 * mode. What may never weaken in any mode: no call reaches its upstream unless its
 * decision record is in the log, and no answer reaches a caller unless its
 * outcome record is too. (Power loss, what the modes differ in, no test here can cause.)
 */
const CALLERS = 8;
const RUNS_PER_MODE = 2;
const dirs: string[] = [];

after(() => {
  if (!process.env.KEEP) for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Gateway {
  child: ChildProcess;
  url: string;
  exited: Promise<void>;
}

async function serve(configPath: string): Promise<Gateway> {
  const child = spawn(NODE, [join(ROOT, 'bin/portcullis.js'), 'serve', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.includes('"event":"listening"'));
      if (line) resolve((JSON.parse(line) as { url: string }).url);
    });
    void exited.then(() => reject(new Error(`serve exited before listening: ${err}`)));
  });
  return { child, url, exited };
}

/** One caller (the v1 SDK client most deployed clients use): calls until the gateway is gone. */
async function caller(
  url: string,
  id: number,
  released: Set<string>,
  onResult: () => void,
  headers: Record<string, string>,
): Promise<void> {
  const client = new Client({ name: `crash-caller-${id}`, version: '1.0.0' });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
    for (let n = 0; ; n++) {
      const nonce = `c${id}-${n}-${randomBytes(4).toString('hex')}`;
      const result = await client.callTool({ name: 'probe__record', arguments: { text: nonce } });
      const text = (result.content as { text?: string }[])[0]?.text;
      assert.equal(text, nonce, `caller ${id} got someone else's answer`);
      released.add(nonce);
      onResult();
    }
  } catch {
    // The gateway was killed: the caller stops here.
  } finally {
    await client.close().catch(() => {});
  }
}

interface Logged {
  decided: Map<string, string>;
  outcomes: Set<string>;
  /** Call ids with a lease issued for them. */
  leased: Set<string>;
}

/** Every decision (by the nonce in its clear arguments, to its call id) and outcome in the log. */
async function readLog(audit: Record<string, unknown>): Promise<Logged> {
  const store = await openAuditStore({ config: auditSchema.parse(audit), baseDir: ROOT }, { readOnly: true });
  try {
    const head = await store.head();
    const decided = new Map<string, string>();
    const outcomes = new Set<string>();
    const leased = new Set<string>();
    for (const e of await store.entries(0, head.size)) {
      const r = JSON.parse(e.leaf.toString()) as {
        type: string;
        callId: string;
        tool?: string;
        args?: { text?: string };
        decision?: { effect?: string };
        event?: string;
      };
      if (r.type === 'decision' && r.tool === 'probe__record' && r.decision?.effect === 'allow')
        decided.set(r.args!.text!, r.callId);
      if (r.type === 'outcome') outcomes.add(r.callId);
      if (r.type === 'lease' && r.event === 'issued') leased.add(r.callId);
    }
    return { decided, outcomes, leased };
  } finally {
    await store.close();
  }
}

type Run = {
  mode: 'record' | 'overlap' | 'interval';
  store: 'sqlite' | 'postgres';
  upstream: 'stdio' | 'http';
};
const RUNS: Run[] = [
  ...(['record', 'overlap', 'interval'] as const).flatMap((mode) =>
    Array.from({ length: RUNS_PER_MODE }, () => ({
      mode,
      store: 'sqlite' as const,
      upstream: 'stdio' as const,
    })),
  ),
  ...(['record', 'overlap', 'interval'] as const).map((mode) => ({
    mode,
    store: 'postgres' as const,
    upstream: 'stdio' as const,
  })),
  // An HTTP upstream given a JWT minted per call: the lease's record shares the decision's commit.
  ...(['sqlite', 'postgres'] as const).map((store) => ({
    mode: 'record' as const,
    store,
    upstream: 'http' as const,
  })),
];
const tables: string[] = [];

after(async () => {
  const client = new pg.Client(PG_URL);
  await client.connect();
  try {
    for (const t of tables) {
      const { rows } = await client.query('SELECT tablename FROM pg_tables WHERE tablename LIKE $1', [
        `${t}%`,
      ]);
      for (const { tablename } of rows) await client.query(`DROP TABLE IF EXISTS ${tablename} CASCADE`);
      const fns = await client.query('SELECT proname FROM pg_proc WHERE proname LIKE $1', [`${t}%`]);
      for (const { proname } of fns.rows) await client.query(`DROP FUNCTION IF EXISTS ${proname} CASCADE`);
    }
  } finally {
    await client.end();
  }
});

describe('a gateway killed with SIGKILL under load, in each durability mode', () => {
  for (const { mode, store, upstream } of RUNS) {
    // Where the kill lands: after this many answers (printed, so a failure can be rerun at the same point).
    const killAfter = 5 + Math.floor(Math.random() * 150);
    it(`${store}, ${mode}, ${upstream} upstream: no call reached the upstream and no answer reached a caller without its records (kill after ${killAfter} answers)`, async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'pc-crash-'));
      dirs.push(dir);
      const callsFile = join(dir, 'calls.txt');
      const auditPath = join(dir, 'audit.db');
      const configPath = join(dir, 'portcullis.json');
      const table = `crash_${randomBytes(4).toString('hex')}`;
      tables.push(table);
      const http = upstream === 'http' ? await startRecordUpstream() : undefined;
      t.after(() => http?.close());
      const audit = {
        path: auditPath,
        durability: { mode },
        clearArguments: ['*'],
        ...(store === 'postgres' ? { store, url: PG_URL, table } : {}),
      };
      const config = {
        listen: { host: '127.0.0.1', port: 0 },
        audit,
        state: { store: 'sqlite', path: join(dir, 'state.db') },
        attest: { keyDir: join(dir, 'attest-keys') },
        policy: { files: [PERMIT_ALL_POLICY] },
        upstreams: {
          probe: http
            ? { transport: 'http', url: http.url, credentials: { kind: 'minted-jwt' } }
            : probeUpstream({ sandbox: 'off', env: { PROBE_CALLS_FILE: callsFile } }),
        },
        log: { level: 'error' },
        // Minted JWTs need callers with gateway tokens (upstreams verify them with its JWKS).
        ...(http
          ? {
              identity: {
                mode: 'token',
                resource: 'https://gateway.test/mcp',
                gatewayTokens: { keyDir: join(dir, 'keys') },
              },
            }
          : {}),
      };
      writeFileSync(configPath, JSON.stringify(config));
      const headers: Record<string, string> = {};
      if (http) {
        const issued = await runCli([
          'token',
          'issue',
          '--config',
          configPath,
          '--sub',
          'crash',
          '--tools',
          'probe__record',
          '--reason',
          'crash drill',
        ]);
        assert.equal(issued.code, 0, issued.stderr);
        headers.authorization = `Bearer ${issued.stdout.trim()}`;
      }
      const gw = await serve(configPath);
      const released = new Set<string>();
      let killed = false;
      const kill = () => {
        if (killed || released.size < killAfter) return;
        killed = true;
        gw.child.kill('SIGKILL');
      };
      await Promise.all(
        Array.from({ length: CALLERS }, (_, i) => caller(gw.url, i, released, kill, headers)),
      );
      await gw.exited;
      assert.ok(killed, 'every caller stopped before the kill');

      const logged = await readLog(audit);
      const seen = http
        ? http.seen
        : existsSync(callsFile)
          ? readFileSync(callsFile, 'utf8').split('\n').filter(Boolean)
          : [];
      assert.ok(seen.length >= released.size);
      for (const nonce of seen) {
        assert.ok(logged.decided.has(nonce), `${nonce} reached the upstream undecided`);
        if (http)
          assert.ok(
            logged.leased.has(logged.decided.get(nonce)!),
            `${nonce} reached the upstream with no lease record`,
          );
      }
      for (const nonce of released) {
        const callId = logged.decided.get(nonce);
        assert.ok(callId, `${nonce} was answered with no decision record`);
        assert.ok(logged.outcomes.has(callId), `${nonce} was answered with no outcome record`);
      }
      // And the log the crash left still verifies.
      const verify = await runCli(['audit', 'verify', '--config', configPath]);
      assert.equal(verify.code, 0, verify.stderr);
    });
  }
});
