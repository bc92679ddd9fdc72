import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { auditSigner } from '../audit/open.ts';
import { loadConfigFile } from '../config/load.ts';
import { createLogger } from '../observability/log.ts';
import {
  defaultSandboxHost,
  dirReachableBySandbox,
  handToSandbox,
  reachableBySandbox,
} from '../sandbox/host.ts';
import { startGateway, untilSignal } from '../server.ts';
import { parseCommandArgs } from './args.ts';
import { bundledServerEntry } from './bundled.ts';
import { DEMO_TOOLS, demoToken, freePortIfZero } from './demo-token.ts';
import { closeOnStop } from './shutdown.ts';

const POLICY_DIR = fileURLToPath(new URL('../../policies/', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/portcullis.js', import.meta.url));
/** Who approves the demo caller's writes: the person running the demo, by this name. */
export const DEMO_OPERATOR = 'demo-operator';

/**
 * The embedded default: a config in `.portcullis/demo` fronting two real MCP
 * servers from npm (filesystem on a fresh sandbox folder, and memory).
 */
export async function demoCommand(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(args, {
    port: { type: 'string', default: '8080' },
    dir: { type: 'string', default: '.portcullis/demo' },
    json: { type: 'boolean', default: false },
  });
  const dir = resolve(values.dir);
  const configPath = writeDemoConfig(dir, await freePortIfZero(Number(values.port)));
  const loaded = loadConfigFile(configPath);
  const log = createLogger('warn');
  // Issued and recorded first: a record that cannot be made stops the demo before anything listens.
  const token = await demoToken(loaded);
  const running = await startGateway(loaded, log);
  await running.gateway.audit.ready;
  const audit = { config: loaded.config.audit!, baseDir: loaded.baseDir };
  const auth = `--header "Authorization: Bearer ${token}"`;
  const inspector = `npx @modelcontextprotocol/inspector --cli ${running.listener.url} --transport http ${auth}`;
  const cli = `node ${BIN}`;
  const note = join(dir, 'sandbox', 'note.txt');
  const info = {
    event: 'demo',
    mcpUrl: running.listener.url,
    adminUrl: running.admin?.url,
    config: configPath,
    sandbox: join(dir, 'sandbox'),
    auditLog: join(dir, 'audit', 'audit.db'),
    auditVerifierKey: auditSigner(audit, log).verifierKey,
    upstreams: Object.keys(loaded.config.upstreams),
    sandboxed: Object.values(loaded.config.upstreams).every(
      (u) => u.transport === 'stdio' && u.sandbox !== undefined && u.sandbox !== 'off',
    ),
    token,
    tokenTools: DEMO_TOOLS,
    tryNext: [
      `${inspector} --method tools/list`,
      `${inspector} --method tools/call --tool-name fs__list_directory --tool-args-json '{"path":"${join(dir, 'sandbox')}"}'`,
      // A write waits for a human: run it, then approve it from another terminal; a retry after a timeout uses the grant.
      `${inspector} --method tools/call --tool-name fs__write_file --tool-args-json '{"path":"${note}","content":"written through an approval"}'`,
      `${cli} approvals list --config ${configPath}`,
      `${cli} approvals approve APPROVAL_ID --config ${configPath} --as ${DEMO_OPERATOR} --comment "ok for the demo"`,
    ],
  };
  // Whoever reads the line below may stop us at once: the handlers are in place first.
  const stopped = untilSignal();
  process.stdout.write(values.json ? `${JSON.stringify(info)}\n` : humanSummary(info));
  await stopped;
  await closeOnStop(running, log);
  return 0;
}

/**
 * Each upstream sandboxed where the machine can: no network, and the only
 * folder it may write is its own. Where it cannot, the sections are left out
 * and the gateway says loudly that they run unsandboxed.
 */
function demoSandboxes(
  dir: string,
  sandbox: string,
  memory: string,
  runs: readonly string[],
): Record<string, unknown> {
  const host = defaultSandboxHost();
  if (!host.available) return {};
  // The demo folder itself is opened to the sandbox below (handToSandbox); the folders above it must be passable.
  const closed =
    runs.find((file) => !reachableBySandbox(host, file)) ??
    (dirReachableBySandbox(host, dir) ? undefined : dir);
  if (closed) {
    // Left out, the default sandbox would fail every start: off, and said loudly.
    createLogger('warn').warn('DEMO UPSTREAMS RUN UNSANDBOXED', {
      why: `the sandbox user (nobody, under root) cannot reach ${closed}: a folder above it is closed to others`,
    });
    return { fs: 'off', memory: 'off' };
  }
  handToSandbox(host, sandbox, dir);
  handToSandbox(host, memory, dir);
  return {
    fs: { network: 'none', writable: [sandbox] },
    memory: { network: 'none', writable: [memory] },
  };
}

function writeDemoConfig(dir: string, port: number): string {
  const sandbox = join(dir, 'sandbox');
  const memory = join(dir, 'memory');
  mkdirSync(sandbox, { recursive: true });
  mkdirSync(memory, { recursive: true });
  writeFileSync(join(sandbox, 'hello.txt'), 'Hello from the Portcullis demo sandbox.\n');
  const servers = {
    fs: bundledServerEntry('@modelcontextprotocol/server-filesystem'),
    memory: bundledServerEntry('@modelcontextprotocol/server-memory'),
  };
  const sandboxes = demoSandboxes(dir, sandbox, memory, [process.execPath, servers.fs, servers.memory]);
  const config = {
    listen: { host: '127.0.0.1', port },
    admin: { port: port === 0 ? 0 : port + 1 },
    // Every caller needs a token, even here: the demo mints one for its own caller.
    identity: {
      mode: 'token',
      resource: `http://127.0.0.1:${port}/mcp`,
      gatewayTokens: { keyDir: join(dir, 'keys') },
    },
    state: { store: 'sqlite', path: join(dir, 'state.db') },
    // Signing and HMAC keys are generated beside the log on first start.
    audit: { store: 'sqlite', path: join(dir, 'audit', 'audit.db') },
    upstreams: {
      fs: {
        transport: 'stdio',
        command: process.execPath,
        args: [servers.fs, sandbox],
        ...(sandboxes.fs ? { sandbox: sandboxes.fs } : {}),
      },
      memory: {
        transport: 'stdio',
        command: process.execPath,
        args: [servers.memory],
        env: { MEMORY_FILE_PATH: join(memory, 'memory.jsonl') },
        ...(sandboxes.memory ? { sandbox: sandboxes.memory } : {}),
      },
    },
    // Reads work for the demo's caller; writes wait for an approval by the operator.
    approvals: { approvers: { operators: [DEMO_OPERATOR] }, keepAliveMs: 2000 },
    policy: {
      files: [join(POLICY_DIR, 'default.cedar'), join(POLICY_DIR, 'demo.cedar')],
      trustAnnotations: ['fs', 'memory'],
    },
  };
  const path = join(dir, 'portcullis.yaml');
  writeFileSync(
    path,
    `# Written by \`portcullis demo\`; edit a copy and run \`portcullis serve --config\`.\n${stringify(config)}`,
  );
  return path;
}

function humanSummary(info: {
  mcpUrl: string;
  adminUrl: string | undefined;
  config: string;
  sandbox: string;
  auditLog: string;
  auditVerifierKey: string;
  token: string;
  tryNext: string[];
}): string {
  return [
    'Portcullis demo is running.',
    `  MCP endpoint : ${info.mcpUrl}`,
    `  token        : ${info.token}`,
    `                 (1 h; tools: ${DEMO_TOOLS.join(', ')}; more: portcullis token issue)`,
    `  admin        : ${info.adminUrl ?? '(disabled)'}  (/healthz, /readyz, /metrics, /status)`,
    `  config       : ${info.config}`,
    `  sandbox      : ${info.sandbox}`,
    `  audit log    : ${info.auditLog}`,
    `  verifier key : ${info.auditVerifierKey}  (portcullis audit verify --config ${info.config})`,
    '',
    'Try next:',
    ...info.tryNext.slice(0, 2).map((c) => `  ${c}`),
    '',
    'Write through an approval: this call waits (the Inspector may time out first; run it again once approved)',
    `  ${info.tryNext[2]}`,
    'and from another terminal, list what waits and approve it:',
    ...info.tryNext.slice(3).map((c) => `  ${c}`),
    '',
    'Stop with Ctrl-C.',
    '',
  ].join('\n');
}
