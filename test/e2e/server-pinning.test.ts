import assert from 'node:assert/strict';
import { once } from 'node:events';
import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/client';
import type { Logger } from '../../src/observability/log.ts';
import type { RunningGateway } from '../../src/server.ts';
import {
  failsWith,
  httpClient,
  NODE,
  PERMIT_ALL_POLICY,
  ROOT,
  runCli,
  startTestGateway,
  textOf,
} from '../helpers.ts';

const FIXTURE = join(ROOT, 'test/fixtures/pinned-server');
const WEBHOOK_SECRET = 'a-webhook-secret-of-32-bytes-at-least';

/** Webhook deliveries, each awaited as it arrives. */
class Receiver {
  readonly bodies: Record<string, unknown>[] = [];
  private waiters: (() => void)[] = [];
  readonly server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      this.bodies.push(JSON.parse(body));
      res.writeHead(204).end();
      for (const w of this.waiters.splice(0)) w();
    });
  });

  async start(): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  /** Resolves once `count` deliveries have arrived. */
  async received(count: number): Promise<Record<string, unknown>[]> {
    while (this.bodies.length < count) await new Promise<void>((r) => this.waiters.push(r));
    return this.bodies;
  }
}

/** A logger the test can wait on: `next(msg)` resolves at the next line with that message. */
function watchedLogger() {
  const waiters: { msg: string; resolve: () => void }[] = [];
  const hit = (msg: string) => {
    for (const w of waiters.filter((x) => x.msg === msg)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  const log: Logger = { debug: hit, info: hit, warn: hit, error: hit };
  const next = (msg: string) => new Promise<void>((resolve) => waiters.push({ msg, resolve }));
  return { log, next };
}

const LOST = 'upstream connection lost; it will be restarted on next use';

interface Setup {
  gw: RunningGateway;
  configPath: string;
  auditPath: string;
  next: (msg: string) => Promise<void>;
}

const running: RunningGateway[] = [];
const clients: Client[] = [];
const receiver = new Receiver();
let hookUrl = '';
before(async () => {
  hookUrl = await receiver.start();
});
after(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await Promise.all(running.map((r) => r.close()));
  receiver.server.close();
});

async function gateway(upstream: Record<string, unknown>): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'pc-serverpin-'));
  const auditPath = join(dir, 'audit.db');
  const config = {
    policy: { files: [PERMIT_ALL_POLICY] },
    state: { store: 'sqlite', path: join(dir, 'state.db') },
    audit: { path: auditPath },
    approvals: {
      approvers: { operators: ['alice'] },
      webhooks: [{ url: hookUrl, secret: WEBHOOK_SECRET, events: ['server.refused'] }],
    },
    upstreams: { pinned: { transport: 'stdio', restart: { initialDelayMs: 1, maxDelayMs: 1 }, ...upstream } },
  };
  const configPath = join(dir, 'portcullis.json');
  writeFileSync(configPath, JSON.stringify(config));
  const { log, next } = watchedLogger();
  const gw = await startTestGateway(config, log);
  running.push(gw);
  return { gw, configPath, auditPath, next };
}

async function client(s: Setup): Promise<Client> {
  const c = await httpClient(s.gw.listener.url, 'legacy');
  clients.push(c);
  return c;
}

const answer = async (c: Client) => textOf(await c.callTool({ name: 'pinned__answer', arguments: {} }));

/** Ends the upstream process and waits until the gateway has seen it go: the next call starts it again. */
async function restart(s: Setup, c: Client): Promise<void> {
  const lost = s.next(LOST);
  await c.callTool({ name: 'pinned__exit', arguments: {} });
  await lost;
}

function auditRecords(s: Setup, kind: string): Record<string, unknown>[] {
  const db = new DatabaseSync(s.auditPath, { readOnly: true });
  try {
    const rows = db.prepare('SELECT leaf FROM audit_entries WHERE kind = ? ORDER BY idx').all(kind);
    return rows.map((r) => JSON.parse(Buffer.from((r as { leaf: Uint8Array }).leaf).toString('utf8')));
  } finally {
    db.close();
  }
}

const servers = (s: Setup, ...args: string[]) => runCli(['servers', ...args, '--config', s.configPath]);

/** Replaces a file by a rename, as an installer does: a new inode under the same path. */
function swap(path: string, text: string): void {
  writeFileSync(`${path}.new`, text);
  renameSync(`${path}.new`, path);
}

/** A patched build of the fixture: the same server, another answer. */
const patched = (path: string) =>
  readFileSync(path, 'utf8').replace("'bye' : answer", "'bye' : answer + ' patched'");

/** A temp folder the upstream's sandbox can read the server from (it runs as nobody under root). */
function readableTemp(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

/** The fixture installed as an npm package with its bin linked, as `npm install` lays it out. */
function fakePackage(): { project: string; pkg: string } {
  const project = readableTemp('pc-serverpin-pkg-');
  const pkg = join(project, 'node_modules', 'fake-mcp');
  mkdirSync(join(pkg, 'bin'), { recursive: true });
  cpSync(FIXTURE, join(pkg, 'bin'), { recursive: true });
  const manifest = { name: 'fake-mcp', version: '1.0.0', bin: { 'fake-mcp': 'bin/server.mjs' } };
  writeFileSync(join(pkg, 'package.json'), JSON.stringify(manifest));
  mkdirSync(join(project, 'node_modules', '.bin'));
  symlinkSync('../fake-mcp/bin/server.mjs', join(project, 'node_modules', '.bin', 'fake-mcp'));
  return { project, pkg };
}

describe('server pinning: a stdio upstream runs only the code that was pinned', () => {
  it('pins a script on first use, refuses it at restart once swapped (typed error, audit record, alert), and starts it again once approved', async () => {
    const dir = readableTemp('pc-serverpin-script-');
    cpSync(FIXTURE, dir, { recursive: true });
    const script = join(dir, 'server.mjs');
    const s = await gateway({ command: NODE, args: [script] });
    const c = await client(s);

    assert.equal(await answer(c), 'build 1');
    const [first] = auditRecords(s, 'upstream-start');
    assert.equal(first?.result, 'started');
    assert.deepEqual(first?.holder, { isolation: 'principal', principal: 'anonymous', session: '' });
    assert.deepEqual(first?.command, { command: NODE, args: [script], cwd: ROOT, executable: NODE });
    const pin = first?.pin as { source: string; actual: { digest: string; files: { role: string }[] } };
    assert.equal(pin.source, 'first-use');
    assert.deepEqual(
      pin.actual.files.map((f) => f.role),
      ['command', 'script'],
    );
    assert.equal(typeof first?.pid, 'number');
    assert.deepEqual(
      auditRecords(s, 'server-pin').map((r) => [r.event, r.upstream]),
      [['first-use', 'pinned']],
    );

    swap(script, patched(script));
    await restart(s, c);
    await assert.rejects(
      answer(c),
      failsWith(-32002, /^Upstream refused to start: it does not match its pin$/),
    );
    const refused = auditRecords(s, 'upstream-start').at(-1)!;
    assert.deepEqual(
      [refused.result, refused.code, refused.reason],
      ['refused', 'ERR_SERVER_PIN_MISMATCH', 'script sha256'],
    );
    const refusedPin = refused.pin as {
      source: string;
      expected: { digest: string };
      actual: { digest: string };
    };
    assert.equal(refusedPin.source, 'stored');
    assert.equal(refusedPin.expected.digest, pin.actual.digest);
    assert.notEqual(refusedPin.actual.digest, pin.actual.digest);
    assert.equal(auditRecords(s, 'outcome').at(-1)?.error, 'ERR_SERVER_PIN_MISMATCH');
    const [alert] = await receiver.received(1);
    const data = alert?.data as Record<string, unknown> | undefined;
    assert.equal(alert?.type, 'server.refused');
    assert.deepEqual(
      [data?.upstream, data?.code, data?.approveCommand],
      ['pinned', 'ERR_SERVER_PIN_MISMATCH', 'portcullis servers approve pinned --as NAME'],
    );

    // Refused again on the next call, still with one alert for this fingerprint.
    await assert.rejects(answer(c), failsWith(-32002));
    const listed = await servers(s, 'list', '--json');
    assert.equal(listed.code, 0, listed.stderr);
    const [row] = JSON.parse(listed.stdout);
    assert.deepEqual([row.upstream, row.source, row.state], ['pinned', 'first-use', 'refused']);
    assert.equal(row.pending, refusedPin.actual.digest);
    const shown = await servers(s, 'show', 'pinned');
    assert.equal(shown.code, 1);
    assert.match(shown.stdout, /does not match its pin \(script sha256\)/);

    const notOperator = await servers(s, 'approve', 'pinned', '--as', 'mallory');
    assert.equal(notOperator.code, 1);
    assert.match(notOperator.stderr, /ERR_APPROVER_NOT_ALLOWED/);
    const approved = await servers(s, 'approve', 'pinned', '--as', 'alice');
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stdout, /^script: [0-9a-f]{64} -> [0-9a-f]{64} {2}.*server\.mjs$/m);

    assert.equal(await answer(c), 'build 1 patched');
    assert.deepEqual(
      auditRecords(s, 'server-pin').map((r) => [r.event, (r.principal as { id: string }).id]),
      [
        ['first-use', 'gateway'],
        ['approved', 'operator:alice'],
      ],
    );
    const restarted = auditRecords(s, 'upstream-start').at(-1)!;
    assert.equal(restarted.result, 'started');
    assert.equal((restarted.pin as { source: string }).source, 'stored');
    assert.equal(receiver.bodies.length, 1);
  });

  it('pins an npm package by its files at first approval, refuses it when one file of the package is swapped, and starts it again once approved', async () => {
    const { project, pkg } = fakePackage();
    const s = await gateway({ command: 'node_modules/.bin/fake-mcp', cwd: project });
    const pinned = await servers(s, 'pin', 'pinned', '--as', 'alice');
    assert.equal(pinned.code, 0, pinned.stderr);
    assert.equal(JSON.parse(pinned.stdout).event, 'pinned');
    const shown = await servers(s, 'show', 'pinned', '--json');
    assert.equal(shown.code, 0, shown.stderr);
    const report = JSON.parse(shown.stdout);
    assert.deepEqual(
      report.actual.files.map((f: { role: string; path: string }) => [
        f.role,
        f.path.endsWith('/server.mjs'),
      ]),
      [
        ['command', true],
        ['interpreter', false],
      ],
    );
    assert.deepEqual(
      [report.actual.package.name, report.actual.package.version, report.actual.package.files],
      ['fake-mcp', '1.0.0', 3],
    );

    const c = await client(s);
    assert.equal(await answer(c), 'build 1');
    assert.equal((auditRecords(s, 'upstream-start')[0]!.pin as { source: string }).source, 'stored');

    swap(join(pkg, 'bin', 'answer.mjs'), "export const answer = 'build 2';\n");
    await restart(s, c);
    await assert.rejects(answer(c), failsWith(-32002, /does not match its pin/));
    const refused = auditRecords(s, 'upstream-start').at(-1)!;
    assert.deepEqual([refused.result, refused.reason], ['refused', 'package sha256']);

    const approved = await servers(s, 'approve', 'pinned', '--as', 'alice');
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stdout, /^package fake-mcp: 1\.0\.0 [0-9a-f]{64} -> 1\.0\.0 [0-9a-f]{64}$/m);
    assert.equal(await answer(c), 'build 2');
  });

  it('checks a pin written in the config: a swapped package file is refused, and only the config can accept it', async () => {
    const { project, pkg } = fakePackage();
    const probe = await gateway({ command: 'node_modules/.bin/fake-mcp', cwd: project });
    const digest = JSON.parse((await servers(probe, 'show', 'pinned', '--json')).stdout).actual.package
      .sha256;
    const s = await gateway({
      command: 'node_modules/.bin/fake-mcp',
      cwd: project,
      pin: { package: { name: 'fake-mcp', sha256: digest } },
    });
    const c = await client(s);
    assert.equal(await answer(c), 'build 1');
    assert.equal((auditRecords(s, 'upstream-start')[0]!.pin as { source: string }).source, 'config');

    swap(join(pkg, 'bin', 'answer.mjs'), "export const answer = 'build 2';\n");
    await restart(s, c);
    await assert.rejects(answer(c), failsWith(-32002, /does not match its pin/));
    const approve = await servers(s, 'approve', 'pinned', '--as', 'alice');
    assert.equal(approve.code, 1);
    assert.match(approve.stderr, /ERR_SERVER_PIN_IN_CONFIG/);
    assert.deepEqual(auditRecords(s, 'server-pin'), []);
  });
});
