import { createServer } from 'node:net';
import type { LoadedConfig } from '../config/load.ts';
import { mintGatewayToken } from '../identity/gateway-tokens.ts';
import { gatewayIssuer, gatewayKeyDir } from '../identity/service.ts';
import { adminAct, adminActor, recordAdminAct } from './admin-audit.ts';

/** The demo caller may read the sandbox and the memory graph, and write in the sandbox through an approval. */
export const DEMO_TOOLS = [
  'fs__write_file',
  'fs__list_allowed_directories',
  'fs__list_directory',
  'fs__read_text_file',
  'fs__get_file_info',
  'fs__search_files',
  'fs__directory_tree',
  'memory__read_graph',
  'memory__search_nodes',
  'memory__open_nodes',
];

/**
 * A gateway token for the demo's own caller, for the longest lifetime the
 * config allows; handed out, as by `token issue`, once its issue is recorded.
 */
export async function demoToken(loaded: LoadedConfig): Promise<string> {
  const identity = loaded.config.identity;
  if (identity.mode !== 'token') throw new Error('demo config must require tokens');
  const minted = await mintGatewayToken(gatewayKeyDir(identity, loaded.baseDir), {
    issuer: gatewayIssuer(identity),
    audience: identity.resource,
    sub: 'demo-caller',
    tools: DEMO_TOOLS,
    // demo.cedar lets its caller read every resource and get every prompt.
    prompts: ['*'],
    resources: ['*'],
    ttlSeconds: identity.gatewayTokens.maxTtlSeconds,
    maxTtlSeconds: identity.gatewayTokens.maxTtlSeconds,
    reason: 'portcullis demo',
    nowSeconds: Math.floor(Date.now() / 1000),
  });
  const detail = {
    jti: minted.jti,
    kid: minted.kid,
    sub: 'demo-caller',
    allowedTools: DEMO_TOOLS,
    allowedPrompts: ['*'],
    allowedResources: ['*'],
    expiresAt: minted.exp * 1000,
    reason: 'portcullis demo',
  };
  await recordAdminAct(
    loaded,
    adminAct('token-issued', adminActor(loaded, undefined), detail, {
      id: minted.jti,
      what: `the demo token ${minted.jti} was not handed out`,
    }),
  );
  return minted.token;
}

/** The token's audience names the port, so port 0 is settled before the config is written. */
export async function freePortIfZero(port: number): Promise<number> {
  if (port !== 0) return port;
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const free = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return free;
}
