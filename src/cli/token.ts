import { loadConfigFile } from '../config/load.ts';
import { ConfigError, UsageError } from '../errors.ts';
import { mintGatewayToken, parseDuration } from '../identity/gateway-tokens.ts';
import { gatewayIssuer, gatewayKeyDir } from '../identity/service.ts';
import { parseCommandArgs, required } from './args.ts';
import { USAGE } from './usage.ts';

/** `portcullis token issue --sub S --tools a,b --ttl 10m --reason "..."`: prints the token on stdout. */
export async function tokenCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'issue') throw new UsageError(USAGE.token!);
  const { values } = parseCommandArgs(rest, {
    config: { type: 'string', short: 'c' },
    sub: { type: 'string' },
    workload: { type: 'string' },
    tools: { type: 'string' },
    ttl: { type: 'string', default: '10m' },
    reason: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  const loaded = loadConfigFile(required(values.config, '--config'));
  const identity = loaded.config.identity;
  if (identity.mode !== 'token')
    throw new ConfigError('token issue needs identity.mode: token (the gateway must require tokens)');
  const tools = required(values.tools, '--tools')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  if (tools.length === 0) throw new UsageError('--tools must name at least one tool');
  const minted = await mintGatewayToken(gatewayKeyDir(identity, loaded.baseDir), {
    issuer: gatewayIssuer(identity),
    audience: identity.resource,
    sub: required(values.sub, '--sub'),
    ...(values.workload ? { workload: values.workload } : {}),
    tools,
    ttlSeconds: parseDuration(values.ttl),
    maxTtlSeconds: identity.gatewayTokens.maxTtlSeconds,
    reason: required(values.reason, '--reason'),
    nowSeconds: Math.floor(Date.now() / 1000),
  });
  process.stdout.write(
    values.json
      ? `${JSON.stringify({ token: minted.token, jti: minted.jti, exp: minted.exp })}\n`
      : `${minted.token}\n`,
  );
  return 0;
}
