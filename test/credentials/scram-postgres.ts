import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A throwaway PostgreSQL cluster of the installed server that checks
 * passwords (scram-sha-256 for every connection): the shared test server
 * trusts every local login, and `trust` never looks at a password or at
 * VALID UNTIL, so only here can a test see PostgreSQL refuse an expired role.
 * Run as the `postgres` OS user when the tests run as root (initdb refuses root).
 */
export interface ScramPostgres {
  /** `postgres://admin:…@127.0.0.1:PORT/postgres`: a superuser. */
  readonly adminUrl: string;
  readonly port: number;
  close(): Promise<void>;
}

const bindir = (): string =>
  process.env.PORTCULLIS_TEST_PG_BINDIR ??
  execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

export async function startScramPostgres(): Promise<ScramPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-scram-pg-'));
  const password = `pw${process.pid}${Date.now()}`;
  writeFileSync(join(dir, 'pw'), password);
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
    chownSync(dir, uid, gid);
    chownSync(join(dir, 'pw'), uid, gid);
  }
  const run = (cmd: string, args: string[]) =>
    asRoot ? { cmd: 'runuser', args: ['-u', 'postgres', '--', cmd, ...args] } : { cmd, args };
  const bin = bindir();
  const data = join(dir, 'data');
  const init = run(join(bin, 'initdb'), [
    ...['-D', data, '-U', 'admin', '--pwfile', join(dir, 'pw'), '--auth', 'scram-sha-256'],
    ...['-N', '-E', 'UTF8', '--no-instructions'],
  ]);
  execFileSync(init.cmd, init.args, { stdio: 'ignore' });
  const port = await freePort();
  const serve = run(join(bin, 'postgres'), [
    ...['-D', data, '-p', String(port), '-k', dir],
    ...['-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'],
  ]);
  const child = spawn(serve.cmd, serve.args, { stdio: ['ignore', 'ignore', 'pipe'] });
  await ready(child);
  return {
    adminUrl: `postgres://admin:${password}@127.0.0.1:${port}/postgres`,
    port,
    close: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      // pg_ctl waits for the shutdown to finish, so nothing is still writing when the folder goes.
      const stop = run(join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'fast', '-w']);
      execFileSync(stop.cmd, stop.args, { stdio: 'ignore' });
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves when the server says it accepts connections; rejects if it exits first. */
function ready(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes('ready to accept connections')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`postgres exited (${code}): ${log}`)));
  });
}
