import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { validateConfig } from '../src/config/load.ts';
import type { Config } from '../src/config/schema.ts';
import { type ErrorCode, PortcullisError } from '../src/errors.ts';
import { ANONYMOUS } from '../src/identity/principal.ts';
import { resultResponse } from '../src/jsonrpc.ts';
import { type Logger, silentLogger } from '../src/observability/log.ts';
import type { CallContext } from '../src/pipeline/context.ts';
import { type RunningGateway, startGateway } from '../src/server.ts';
import { newSession } from '../src/session.ts';

/** The PostgreSQL and Redis the tests use (real servers; tests keep apart by unique table names and key prefixes). */
export const PG_URL = process.env.PORTCULLIS_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.PORTCULLIS_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const NODE = process.execPath;
const require = createRequire(import.meta.url);

export function serverEntry(pkg: string): string {
  const manifest = require(`${pkg}/package.json`) as { bin: Record<string, string> };
  return join(dirname(require.resolve(`${pkg}/package.json`)), Object.values(manifest.bin)[0]!);
}

export const probeUpstream = (extra: Record<string, unknown> = {}) => ({
  transport: 'stdio',
  command: NODE,
  args: [join(ROOT, 'test/fixtures/probe-server.ts')],
  ...extra,
});

/** Relay tests exercise the protocol, not policy: without a `policy` section they get this permit-all set. */
export const PERMIT_ALL_POLICY = join(ROOT, 'policies/permit-all-FOR-TESTS-ONLY.cedar');

/** Starts a gateway in this process on a free loopback port (logging to `log`, silent by default). */
export async function startTestGateway(
  config: Record<string, unknown>,
  log: Logger = silentLogger,
): Promise<RunningGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-test-audit-'));
  const full = {
    policy: { files: [PERMIT_ALL_POLICY] },
    // Each test gateway keeps its own audit log, so test files never share one.
    audit: { path: join(dir, 'audit.db') },
    // And its own state: tool pins made by one test's upstreams never quarantine another's.
    state: { store: 'sqlite', path: join(dir, 'state.db') },
    // And its own result-signing keys, beside them rather than in the repository's .portcullis/.
    attest: { keyDir: join(dir, 'attest-keys') },
    ...config,
    listen: { host: '127.0.0.1', port: 0, ...((config.listen as object) ?? {}) },
  };
  return startGateway({ config: validateConfig(full), baseDir: ROOT }, log, { banner: false });
}

/**
 * A gateway that requires tokens (identity.mode: token), its keys and state in
 * `dir`; `token()` mints a gateway token for it.
 */
export async function startAuthTestGateway(
  config: Record<string, unknown>,
  dir: string,
  log: Logger = silentLogger,
) {
  const identity = {
    mode: 'token',
    resource: TEST_RESOURCE,
    gatewayTokens: { keyDir: join(dir, 'keys') },
    ...((config.identity as object) ?? {}),
  };
  const state = config.state ?? { store: 'sqlite', path: join(dir, 'state.db') };
  const full = { ...config, identity, state };
  const running = await startTestGateway(full, log);
  const validated = validateConfig({ ...full, listen: { host: '127.0.0.1', port: 0 } });
  const token = (sub: string, tools: string[], ttlSeconds = 600, lists: TokenLists = {}) =>
    mintTestToken(validated.identity, sub, tools, ttlSeconds, lists);
  return { running, token, url: running.listener.url };
}

export const TEST_RESOURCE = 'https://gateway.test/mcp';

/** Prompts and resources a test token may use besides its tools (none unless named). */
export interface TokenLists {
  prompts?: string[];
  resources?: string[];
}

async function mintTestToken(
  identity: Config['identity'],
  sub: string,
  tools: string[],
  ttlSeconds: number,
  lists: TokenLists,
) {
  const { mintGatewayToken } = await import('../src/identity/gateway-tokens.ts');
  const { gatewayIssuer, gatewayKeyDir } = await import('../src/identity/service.ts');
  if (identity.mode !== 'token') throw new Error('not an authenticated gateway');
  return mintGatewayToken(gatewayKeyDir(identity, ROOT), {
    issuer: gatewayIssuer(identity),
    audience: identity.resource,
    sub,
    tools,
    ...lists,
    ttlSeconds,
    maxTtlSeconds: identity.gatewayTokens.maxTtlSeconds,
    reason: 'test',
    nowSeconds: Math.floor(Date.now() / 1000),
  });
}

export type Era = 'legacy' | 'modern';

export async function httpClient(url: string, era: Era, headers?: Record<string, string>): Promise<Client> {
  const client = new Client(
    { name: 'test-client', version: '1.0.0' },
    era === 'modern' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : {},
  );
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), headers ? { requestInit: { headers } } : undefined),
  );
  return client;
}

export async function wrapClient(configPath: string, extraArgs: string[] = []): Promise<Client> {
  const client = new Client({ name: 'test-client', version: '1.0.0' });
  await client.connect(
    new StdioClientTransport({
      command: NODE,
      args: [join(ROOT, 'bin/portcullis.js'), 'wrap', '--config', configPath, ...extraArgs],
      stderr: 'ignore',
    }),
  );
  return client;
}

export const textOf = (result: unknown): string => {
  const content = (result as { content?: { type: string; text?: string }[] }).content ?? [];
  return content.map((c) => c.text ?? '').join('');
};

/** Raw POST to the gateway, for wire-level assertions. */
export async function post(
  url: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; json: unknown; text: string }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body,
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}

export const initializeBody = (id: number | string = 1) =>
  JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  });

/** Runs the portcullis CLI as a user would, collecting its exit code and output. */
export function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(NODE, [join(ROOT, 'bin/portcullis.js'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/**
 * A folder of the team's shared test corpora (data written by others): beside
 * the repository as `../shared/corpora`, or wherever PORTCULLIS_CORPORA points.
 */
export function corpus(name: string): string {
  const root = process.env.PORTCULLIS_CORPORA ?? join(ROOT, '..', 'shared', 'corpora');
  const dir = join(root, name);
  if (!existsSync(dir)) {
    throw new Error(
      `test corpus ${dir} not found: put shared/ beside the repository or set PORTCULLIS_CORPORA`,
    );
  }
  return dir;
}

/**
 * A call context for stage-level tests: a legacy `tools/call` from ANONYMOUS
 * unless told otherwise; any field can be replaced.
 */
export function testCallContext(
  overrides: Partial<CallContext> & { era?: 'legacy' | 'modern'; sessionKey?: string } = {},
): CallContext {
  const { era = 'legacy', sessionKey = 'k', ...fields } = overrides;
  const principal = fields.principal ?? ANONYMOUS;
  const protocolVersion = era === 'modern' ? '2026-07-28' : '2025-11-25';
  return {
    callId: 'c1',
    startedAt: 0,
    request: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: {} },
    session: newSession({ id: 's', key: sessionKey, principal, era, protocolVersion }),
    principal,
    sink: { notify() {}, request: async (m) => resultResponse(m.id, {}) },
    signal: new AbortController().signal,
    timings: {},
    ...fields,
  };
}

/**
 * A validator for `assert.rejects` (and `assert.throws`): the error is a PortcullisError with
 * this `code`, or, for a number, an error carrying the JSON-RPC code an MCP client sees; when
 * given, its message matches `message`.
 */
export const failsWith =
  (code: ErrorCode | number, message?: RegExp) =>
  (err: unknown): true => {
    if (typeof code === 'string') assert.ok(err instanceof PortcullisError, `not a PortcullisError: ${err}`);
    assert.equal((err as { code?: unknown }).code, code);
    if (message) assert.match(String((err as { message?: unknown }).message), message);
    return true;
  };

/**
 * Calls the probe's `hang` tool once the upstream's handshake is done, and resolves with
 * the call's rejection when the gateway's upstream timeout ends it: the upstream never
 * answers, so how long the machine takes cannot change the outcome.
 */
export async function hangUntilUpstreamTimeout(client: Client) {
  // The handshake is done first, so what runs out below is the call's own timeout, not the start-up's.
  await client.callTool({ name: 'probe__echo', arguments: { text: 'warm' } });
  // No mocked timers: they would also fire the HTTP client's own parser timers (undici) in this process.
  return client.callTool({ name: 'probe__hang', arguments: {} }).then(
    (r) => assert.fail(`a hung call was answered: ${JSON.stringify(r)}`),
    (err: unknown) => err,
  );
}

/**
 * Resolves once `check` holds, looking again after each short pause: for effects
 * outside the process that send no signal (a file another process appends to, a
 * watched file reloaded). The test's own timeout bounds the wait, not a count of tries.
 */
export async function eventually(check: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 10));
}

/** A logger that resolves `next(prefix)` with the next message logged at any level that starts with `prefix`. */
export function signallingLogger(): Logger & { next(prefix: string): Promise<string> } {
  const waiters: { prefix: string; resolve: (msg: string) => void }[] = [];
  const seen = (msg: string) => {
    for (const w of waiters.filter((x) => msg.startsWith(x.prefix))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(msg);
    }
  };
  return {
    debug: seen,
    info: seen,
    warn: seen,
    error: seen,
    next: (prefix) => new Promise((resolve) => waiters.push({ prefix, resolve })),
  };
}

/**
 * The sandbox of a stdio upstream that works in one folder (the filesystem
 * server): no network, only that folder writable, and the folder opened to the
 * sandbox's user (nobody, when the tests run as root), as a root operator would.
 */
export function ownFolderSandbox(folder: string): { network: 'none'; writable: string[] } {
  chmodSync(folder, 0o777);
  return { network: 'none', writable: [folder] };
}
