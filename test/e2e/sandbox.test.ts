import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/client';
import { validateConfig } from '../../src/config/load.ts';
import type { Logger } from '../../src/observability/log.ts';
import { detectSandboxHost } from '../../src/sandbox/host.ts';
import { type RunningGateway, startGateway } from '../../src/server.ts';
import { GATEWAY_CLIENT } from '../../src/upstream/connection.ts';
import { failsWith, httpClient, NODE, PERMIT_ALL_POLICY, ROOT, textOf } from '../helpers.ts';

const ESCAPE = join(ROOT, 'test/fixtures/escape-server.ts');
const PG = { host: '127.0.0.1', port: 5432 };

/** Log lines kept for assertions. */
function capturingLogger(): Logger & { lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const at =
    (level: string) =>
    (msg: string, fields: Record<string, unknown> = {}) =>
      void lines.push({ level, msg, ...fields });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

interface Outcome {
  ok: boolean;
  code?: string;
  detail?: string;
}

const escapeUpstream = (sandbox: unknown, extra: Record<string, unknown> = {}) => ({
  transport: 'stdio',
  command: NODE,
  args: [ESCAPE],
  isolation: 'shared',
  timeoutMs: 15_000,
  restart: { initialDelayMs: 50, maxDelayMs: 200 },
  ...(sandbox === undefined ? {} : { sandbox }),
  ...extra,
});

/** Outside /tmp (every sandbox has its own), so what hides these files is the sandbox's plan, not /tmp. */
function workDir(): { dir: string; own: string; others: string; keys: string; secret: string; key: string } {
  mkdirSync(join(ROOT, 'tmp'), { recursive: true });
  const dir = mkdtempSync(join(ROOT, 'tmp', 'sandbox-test-'));
  chmodSync(dir, 0o755);
  const own = join(dir, 'own');
  const others = join(dir, 'others');
  const keys = join(dir, 'keys');
  for (const d of [own, others, keys]) {
    mkdirSync(d);
    // World-readable and writable: only the sandbox keeps an upstream out of them (it runs as nobody under root).
    chmodSync(d, 0o777);
  }
  const secret = join(others, 'secret.txt');
  const key = join(keys, 'signing.key');
  writeFileSync(secret, 'another upstream keeps this');
  writeFileSync(key, 'the gateway signing key');
  chmodSync(secret, 0o666);
  chmodSync(key, 0o644);
  return { dir, own, others, keys, secret, key };
}

describe('stdio upstreams in their sandboxes, through the gateway', () => {
  const host = detectSandboxHost();
  const w = workDir();
  const log = capturingLogger();
  let gw: RunningGateway;
  let client: Client;
  let web: Server;
  let other: Server;
  let webPort = 0;
  let otherPort = 0;
  const call = async (name: string, args: Record<string, unknown>): Promise<Outcome> =>
    JSON.parse(textOf(await client.callTool({ name, arguments: args }))) as Outcome;

  before(async () => {
    assert.ok(
      host.available,
      `bubblewrap must work here (.ci/run installs it): ${!host.available && host.reason}`,
    );
    assert.ok(host.memory, 'a memory cgroup the gateway can make children in (CI runs as root)');
    web = createServer((_req, res) => res.end('allowed target'));
    other = createServer((_req, res) => res.end('must not be reached'));
    await Promise.all([web, other].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
    webPort = (web.address() as AddressInfo).port;
    otherPort = (other.address() as AddressInfo).port;
    // Two CPU seconds: what jail spends serving the tests before the spin (0.2–0.4 s here) leaves room on a slow machine.
    const limits = { memoryMb: 256, processes: 32, cpuSeconds: 2 };
    const config = validateConfig({
      listen: { host: '127.0.0.1', port: 0 },
      policy: { files: [PERMIT_ALL_POLICY] },
      audit: { path: join(w.dir, 'audit', 'audit.db') },
      state: { store: 'sqlite', path: join(w.dir, 'state.db') },
      identity: { mode: 'none', gatewayTokens: { keyDir: w.keys } },
      upstreams: {
        jail: escapeUpstream({ network: 'none', writable: [w.own], limits }),
        // The fork storm gets a sandbox of its own: jail's CPU seconds are spent by the tests before it.
        forker: escapeUpstream({
          network: 'none',
          writable: [],
          limits: { ...limits, cpuSeconds: 60 },
        }),
        egress: escapeUpstream({ network: { allow: [`localhost:${webPort}`] }, writable: [w.others] }),
        control: escapeUpstream('off'),
      },
    });
    gw = await startGateway({ config, baseDir: w.dir }, log, { banner: false });
    client = await httpClient(gw.listener.url, 'legacy');
  });

  let closed = false;
  after(async () => {
    if (!closed) {
      await client?.close();
      await gw?.close();
    }
    await Promise.all([web, other].map((s) => new Promise((r) => s.close(r))));
    rmSync(w.dir, { recursive: true, force: true });
    assert.deepEqual(ourCgroups(), [], 'every sandbox cgroup is removed when the gateway closes');
  });

  const ourCgroups = (): string[] =>
    host.available && host.memory
      ? readdirSync(host.memory.parent).filter((n) => n.startsWith(`portcullis-${process.pid}-`))
      : [];

  it('puts each sandboxed process in a memory cgroup of its own, limited to its memoryMb', async () => {
    assert.equal((await call('jail__read', { path: '/etc/hostname' })).ok, true);
    assert.equal((await call('egress__read', { path: '/etc/hostname' })).ok, true);
    assert.ok(host.available && host.memory);
    const parent = host.memory.parent;
    const file = host.memory.version === 1 ? 'memory.limit_in_bytes' : 'memory.max';
    const limits = ourCgroups().map((n) => readFileSync(join(parent, n, file), 'utf8').trim());
    assert.ok(limits.includes(String(256 * 1024 * 1024)), `the jail's cgroup: ${limits.join(', ')}`);
    const occupied = ourCgroups().filter((n) => readFileSync(join(parent, n, 'cgroup.procs'), 'utf8').trim());
    assert.ok(occupied.length >= 2, 'the sandboxed upstreams run inside their cgroups');
  });

  it('keeps a sandboxed upstream off PostgreSQL on loopback, which the unsandboxed control reaches', async () => {
    assert.deepEqual(await call('control__connect', PG), { ok: true });
    const jailed = await call('jail__connect', PG);
    assert.equal(jailed.ok, false);
    assert.match(jailed.code!, /^(ECONNREFUSED|ENETUNREACH)$/);
  });

  it('gives a sandbox no route to the cloud metadata address', async () => {
    const jailed = await call('jail__connect', { host: '169.254.169.254', port: 80 });
    assert.deepEqual([jailed.ok, jailed.code], [false, 'ENETUNREACH']);
    const control = await call('control__connect', { host: '169.254.169.254', port: 80 });
    assert.notEqual(control.code, 'ENETUNREACH', 'the host has a route: the attempt is real');
  });

  it('lets an allowlisted upstream reach its host by name through the proxy, and nothing else', async () => {
    const allowed = await call('egress__http_get', { url: `http://localhost:${webPort}/` });
    assert.deepEqual([allowed.ok, allowed.detail], [true, 'allowed target']);
    const control = await call('control__http_get', { url: `http://localhost:${otherPort}/` });
    assert.deepEqual([control.ok, control.detail], [true, 'must not be reached']);
    const refused = await call('egress__http_get', { url: `http://localhost:${otherPort}/` });
    assert.deepEqual([refused.ok, refused.code], [false, '403']);
    const metadata = await call('egress__http_get', { url: 'http://169.254.169.254/latest/meta-data/' });
    assert.deepEqual([metadata.ok, metadata.code], [false, '403']);
    // Around the proxy there is no way out either.
    assert.equal((await call('egress__connect', PG)).ok, false);
    const decisions = log.lines
      .filter((l) => l.msg === 'egress allowed' || String(l.msg).startsWith('egress refused'))
      .map((l) => `${l.allowed} ${l.host}:${l.port}`);
    assert.deepEqual(decisions, [
      `true localhost:${webPort}`,
      `false localhost:${otherPort}`,
      'false 169.254.169.254:80',
    ]);
  });

  it('hides /etc/shadow, the gateway key directory and audit log, and another upstream files', async () => {
    for (const path of ['/etc/shadow', w.key, w.secret, join(w.dir, 'audit', 'audit.db')]) {
      assert.equal((await call('control__read', { path })).ok, true, `control reads ${path}`);
      const jailed = await call('jail__read', { path });
      assert.equal(jailed.ok, false, `sandbox reads ${path}`);
      assert.match(jailed.code!, /^(ENOENT|EACCES)$/);
    }
    // The sandbox's own folder and the server's package stay readable.
    assert.equal((await call('jail__write', { path: join(w.own, 'mine.txt'), text: 'mine' })).ok, true);
    assert.equal((await call('jail__read', { path: join(w.own, 'mine.txt') })).detail, 'mine');
  });

  it('refuses writes outside the writable paths, which the control can make', async () => {
    const outside = join(w.dir, 'outside.txt');
    const jailed = await call('jail__write', { path: outside, text: 'escaped' });
    // Read-only (EROFS), or, where the checkout itself lies under /tmp, into the sandbox's private /tmp:
    // either way nothing reaches the host's file.
    if (!jailed.ok) assert.equal(jailed.code, 'EROFS');
    assert.equal(existsSync(outside), false, 'the write reached the host');
    assert.equal((await call('jail__write', { path: '/etc/portcullis-escape', text: 'x' })).code, 'EROFS');
    assert.equal((await call('control__write', { path: outside, text: 'real' })).ok, true);
    assert.equal(readFileSync(outside, 'utf8'), 'real');
  });

  it('caps the processes a sandbox may start, and keeps serving', async () => {
    assert.deepEqual(await call('control__fork', { count: 48 }), { ok: true, detail: '48/48' });
    // What the upstream said and what the gateway saw, should it die: to tell a cap from a crash.
    const seen = () => JSON.stringify(log.lines.filter((l) => l.upstream === 'forker').slice(-20));
    const jailed = await call('forker__fork', { count: 48 }).catch((err: unknown) => {
      throw new Error(`forker__fork failed: ${String(err)}; ${seen()}`);
    });
    assert.equal(jailed.ok, false);
    assert.ok(Number(jailed.detail!.split('/')[0]) < 32, jailed.detail);
    assert.equal((await call('forker__read', { path: '/etc/hostname' })).ok, true, seen());
  });

  it('kills a sandbox that allocates past its memory limit, fails its call cleanly and restarts it', async () => {
    assert.equal((await call('control__allocate', { mb: 320 })).ok, true);
    await assert.rejects(
      client.callTool({ name: 'jail__allocate', arguments: { mb: 4096 } }),
      failsWith(-32002, /Upstream unavailable/),
    );
    assert.equal((await call('egress__read', { path: '/etc/hostname' })).ok, true, 'others keep serving');
    assert.equal((await call('jail__read', { path: join(w.own, 'mine.txt') })).ok, true, 'restarted');
  });

  it('kills a sandbox that spins past its CPU time', async () => {
    assert.deepEqual(await call('control__spin', { ms: 1500 }), { ok: true });
    await assert.rejects(
      client.callTool({ name: 'jail__spin', arguments: { ms: 5000 } }),
      failsWith(-32002, /Upstream unavailable/),
    );
    assert.equal((await call('jail__read', { path: join(w.own, 'mine.txt') })).ok, true, 'restarted');
  });

  it('records every upstream start with its sandbox: network, writable paths and limits', async () => {
    await gw.gateway.audit.ready;
    const db = new DatabaseSync(join(w.dir, 'audit', 'audit.db'), { readOnly: true });
    const rows = db
      .prepare("SELECT leaf FROM audit_entries WHERE kind = 'upstream-start' ORDER BY idx")
      .all();
    db.close();
    const starts = rows.map((r) =>
      JSON.parse(Buffer.from((r as { leaf: Uint8Array }).leaf).toString('utf8')),
    );
    const jail = starts.filter((s) => s.upstream === 'jail');
    assert.ok(jail.length >= 3, 'the first start and one after each kill');
    assert.deepEqual(jail[0].sandbox, {
      mechanism: 'bubblewrap',
      network: 'none',
      writable: [w.own],
      limits: { memoryMb: 256, processes: 32, openFiles: 1024, cpuSeconds: 2 },
      memoryLimitBy: `cgroup v${host.available && host.memory?.version}`,
    });
    assert.equal(jail[0].result, 'started');
    const egress = starts.find((s) => s.upstream === 'egress');
    assert.deepEqual(egress.sandbox.network, { allow: [`localhost:${webPort}`] });
    const control = starts.find((s) => s.upstream === 'control');
    assert.deepEqual(control.sandbox, { mechanism: 'none', why: 'off' });
  });

  // Closes the gateway (the counts are written on shutdown): keep it last.
  it('records where a sandboxed upstream tried to connect, allowed and refused, by the time the gateway closes', async () => {
    assert.equal((await call('egress__http_get', { url: `http://localhost:${webPort}/` })).ok, true);
    assert.equal((await call('egress__http_get', { url: 'http://denied.example:8080/' })).code, '403');
    await client.close();
    await gw.close();
    closed = true;
    const db = new DatabaseSync(join(w.dir, 'audit', 'audit.db'), { readOnly: true });
    const rows = db
      .prepare("SELECT leaf, principal, decision FROM audit_entries WHERE kind = 'egress' ORDER BY idx")
      .all() as { leaf: Uint8Array; principal: string; decision: string }[];
    db.close();
    const egress = rows.map((r) => ({ ...r, record: JSON.parse(Buffer.from(r.leaf).toString('utf8')) }));
    const at = (host: string, port: number) =>
      egress.filter((e) => e.record.host === host && e.record.port === port);
    // Intervals are aligned to the wall clock, so the connections of this file
    // may fall into more than one interval: compare the counts summed per kind.
    const totals = (rows: typeof egress) => {
      const sums = new Map<string, number>();
      for (const e of rows) {
        const kind = JSON.stringify([e.principal, e.decision, e.record.method, e.record.allowed]);
        sums.set(kind, (sums.get(kind) ?? 0) + e.record.count);
      }
      return [...sums].map(([kind, count]) => [...JSON.parse(kind), count]);
    };
    assert.deepEqual(totals(at('localhost', webPort)), [['upstream:egress', 'allow', 'HTTP', true, 2]]);
    assert.deepEqual(totals(at('denied.example', 8080)), [['upstream:egress', 'deny', 'HTTP', false, 1]]);
    assert.ok(
      egress.every((e) => e.principal === 'upstream:egress'),
      'only the allowlisted upstream has a proxy',
    );
  });
});

describe('a CLI command that starts sandboxed upstreams (policy check)', () => {
  it('removes the memory cgroups it made before it exits', async () => {
    const host = detectSandboxHost();
    assert.ok(host.available && host.memory, 'a memory cgroup the CLI can make children in');
    const w = workDir();
    try {
      const configPath = join(w.dir, 'portcullis.json');
      writeFileSync(
        configPath,
        JSON.stringify({
          policy: { files: [PERMIT_ALL_POLICY] },
          audit: { path: join(w.dir, 'audit', 'audit.db') },
          state: { store: 'sqlite', path: join(w.dir, 'state.db') },
          identity: { mode: 'none', gatewayTokens: { keyDir: w.keys } },
          upstreams: { jail: escapeUpstream({ network: 'none' }) },
        }),
      );
      const child = spawn(
        NODE,
        [join(ROOT, 'bin/portcullis.js'), 'policy', 'check', '--config', configPath],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const code = await new Promise((resolve) => child.on('close', resolve));
      assert.equal(code, 0, out);
      assert.match(out, /jail__fork/, 'the sandboxed upstream was started and listed');
      const memory = host.memory;
      const left = readdirSync(memory.parent).filter((n) => n.startsWith(`portcullis-${child.pid}-`));
      assert.deepEqual(left, []);
    } finally {
      rmSync(w.dir, { recursive: true, force: true });
    }
  });
});

describe('a machine that cannot sandbox', () => {
  const w = workDir();
  const log = capturingLogger();
  let gw: RunningGateway;
  after(async () => {
    await gw?.close();
    rmSync(w.dir, { recursive: true, force: true });
  });

  it('does not start an upstream whose config asks for a sandbox, and says so; one without a sandbox section runs, loudly', async () => {
    const config = validateConfig({
      listen: { host: '127.0.0.1', port: 0 },
      policy: { files: [PERMIT_ALL_POLICY] },
      audit: { path: join(w.dir, 'audit.db') },
      state: { store: 'sqlite', path: join(w.dir, 'state.db') },
      upstreams: {
        strict: escapeUpstream({ network: 'none' }),
        lenient: escapeUpstream(undefined),
      },
    });
    const noBwrap = detectSandboxHost({ path: '/nonexistent' });
    gw = await startGateway({ config, baseDir: w.dir }, log, { banner: false, sandboxHost: noBwrap });
    const refusedAtStart = log.lines.find((l) => l.upstream === 'strict' && l.level === 'error');
    assert.match(String(refusedAtStart?.reason), /bubblewrap/);
    const loud = log.lines.find((l) => l.upstream === 'lenient' && l.level === 'warn');
    assert.match(String(loud?.msg), /UNSANDBOXED/);
    const client = await httpClient(gw.listener.url, 'legacy');
    try {
      const listed = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(listed.includes('lenient__read') && !listed.some((n) => n.startsWith('strict__')));
      await assert.rejects(
        client.callTool({ name: 'strict__read', arguments: { path: '/etc/hostname' } }),
        failsWith(-32002, /Upstream unavailable/),
      );
      // The pool's own error, as the call's audit outcome records it.
      const who = {
        key: 'k',
        principal: 'p',
        holds: false,
        client: GATEWAY_CLIENT,
        era: 'legacy' as const,
        unrelated: { notify() {}, request: async () => ({ jsonrpc: '2.0' as const, id: 0, result: {} }) },
      };
      await assert.rejects(gw.gateway.pool.get(who, 'strict'), failsWith('ERR_SANDBOX_UNAVAILABLE'));
      await gw.gateway.audit.ready;
      const db = new DatabaseSync(join(w.dir, 'audit.db'), { readOnly: true });
      const rows = db.prepare("SELECT leaf FROM audit_entries WHERE kind = 'upstream-start'").all();
      db.close();
      const starts = rows.map((r) =>
        JSON.parse(Buffer.from((r as { leaf: Uint8Array }).leaf).toString('utf8')),
      );
      const strict = starts.filter((r) => r.upstream === 'strict');
      assert.ok(
        strict.length > 0 &&
          strict.every((r) => r.result === 'refused' && r.code === 'ERR_SANDBOX_UNAVAILABLE'),
      );
      const lenient = starts.find((r) => r.upstream === 'lenient');
      assert.deepEqual(lenient.sandbox, { mechanism: 'none', why: 'unavailable' });
    } finally {
      await client.close();
    }
  });
});
