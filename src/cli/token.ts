import { loadConfigFile } from '../config/load.ts';
import { ConfigError, UsageError } from '../errors.ts';
import { mintGatewayToken, parseDuration } from '../identity/gateway-tokens.ts';
import { gatewayIssuer, gatewayKeyDir } from '../identity/service.ts';
import { AS_OPTION, adminAct, adminActor, recordAdminAct } from './admin-audit.ts';
import { parseCommandArgs, required } from './args.ts';
import { USAGE } from './usage.ts';

/**
 * `portcullis token issue --sub S --tools a,b [--prompts p] [--resources 'uri*'] --ttl 10m --reason "..."`:
 * prints the token on stdout. A kind not named is denied to the token. The
 * token is printed only once its issue is a durable audit record.
 */
export async function tokenCommand(args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  if (verb !== 'issue') throw new UsageError(USAGE.token!);
  const { values } = parseCommandArgs(rest, {
    config: { type: 'string', short: 'c' },
    sub: { type: 'string' },
    workload: { type: 'string' },
    tools: { type: 'string' },
    prompts: { type: 'string' },
    resources: { type: 'string' },
    ttl: { type: 'string', default: '10m' },
    reason: { type: 'string' },
    json: { type: 'boolean', default: false },
    ...AS_OPTION,
  });
  const loaded = loadConfigFile(required(values.config, '--config'));
  const identity = loaded.config.identity;
  if (identity.mode !== 'token')
    throw new ConfigError('token issue needs identity.mode: token (the gateway must require tokens)');
  const tools = list(values.tools);
  const prompts = list(values.prompts);
  const resources = list(values.resources);
  if (tools.length + prompts.length + resources.length === 0)
    throw new UsageError('--tools, --prompts or --resources must name at least one thing the token may use');
  const actor = adminActor(loaded, values.as);
  const sub = required(values.sub, '--sub');
  const reason = required(values.reason, '--reason');
  const minted = await mintGatewayToken(gatewayKeyDir(identity, loaded.baseDir), {
    issuer: gatewayIssuer(identity),
    audience: identity.resource,
    sub,
    ...(values.workload ? { workload: values.workload } : {}),
    tools,
    prompts,
    resources,
    ttlSeconds: parseDuration(values.ttl),
    maxTtlSeconds: identity.gatewayTokens.maxTtlSeconds,
    reason,
    nowSeconds: Math.floor(Date.now() / 1000),
  });
  // A record too large refuses here, before anything is handed out.
  const act = adminAct(
    'token-issued',
    actor,
    {
      jti: minted.jti,
      kid: minted.kid,
      sub,
      ...(values.workload ? { workload: values.workload } : {}),
      allowedTools: tools,
      allowedPrompts: prompts,
      allowedResources: resources,
      expiresAt: minted.exp * 1000,
      reason,
    },
    { id: minted.jti, what: `token ${minted.jti} for ${sub} was not handed out` },
  );
  await recordAdminAct(loaded, act);
  process.stdout.write(
    values.json
      ? `${JSON.stringify({ token: minted.token, jti: minted.jti, exp: minted.exp })}\n`
      : `${minted.token}\n`,
  );
  return 0;
}

/** A comma-separated list; left out: nothing of that kind. */
const list = (text: string | undefined): string[] =>
  (text ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
