import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { loadConfigFile } from '../config/load.ts';
import { createLogger } from '../observability/log.ts';
import { startGateway, untilSignal } from '../server.ts';
import { parseCommandArgs } from './args.ts';
import { bundledServerEntry } from './bundled.ts';

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
  const configPath = writeDemoConfig(dir, Number(values.port));
  const loaded = loadConfigFile(configPath);
  const log = createLogger('warn');
  const running = await startGateway(loaded, log);
  const info = {
    event: 'demo',
    mcpUrl: running.listener.url,
    adminUrl: running.admin?.url,
    config: configPath,
    sandbox: join(dir, 'sandbox'),
    upstreams: Object.keys(loaded.config.upstreams),
    tryNext: [
      `npx @modelcontextprotocol/inspector --cli ${running.listener.url} --transport http --method tools/list`,
      `npx @modelcontextprotocol/inspector --cli ${running.listener.url} --transport http --method tools/call --tool-name fs__list_directory --tool-args-json '{"path":"${join(dir, 'sandbox')}"}'`,
    ],
  };
  process.stdout.write(values.json ? `${JSON.stringify(info)}\n` : humanSummary(info));
  await untilSignal();
  await running.close();
  return 0;
}

function writeDemoConfig(dir: string, port: number): string {
  const sandbox = join(dir, 'sandbox');
  mkdirSync(sandbox, { recursive: true });
  writeFileSync(join(sandbox, 'hello.txt'), 'Hello from the Portcullis demo sandbox.\n');
  const config = {
    listen: { host: '127.0.0.1', port },
    admin: { port: port === 0 ? 0 : port + 1 },
    identity: { mode: 'none' },
    upstreams: {
      fs: {
        transport: 'stdio',
        command: process.execPath,
        args: [bundledServerEntry('@modelcontextprotocol/server-filesystem'), sandbox],
      },
      memory: {
        transport: 'stdio',
        command: process.execPath,
        args: [bundledServerEntry('@modelcontextprotocol/server-memory')],
        env: { MEMORY_FILE_PATH: join(dir, 'memory.jsonl') },
      },
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
  tryNext: string[];
}): string {
  return [
    'Portcullis demo is running.',
    `  MCP endpoint : ${info.mcpUrl}`,
    `  admin        : ${info.adminUrl ?? '(disabled)'}  (/healthz, /metrics, /status)`,
    `  config       : ${info.config}`,
    `  sandbox      : ${info.sandbox}`,
    '',
    'Try next:',
    ...info.tryNext.map((c) => `  ${c}`),
    '',
    'Stop with Ctrl-C.',
    '',
  ].join('\n');
}
