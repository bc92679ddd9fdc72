import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type LoadedConfig, loadConfigFile, parseYamlText } from '../config/load.ts';
import { ConfigError, UsageError } from '../errors.ts';
import { isObject, type JsonObject } from '../jsonrpc.ts';
import { createLogger, type Logger } from '../observability/log.ts';
import { type PolicyConfig, policySchema } from '../policy/config.ts';
import { PolicyError } from '../policy/errors.ts';
import { Catalog } from '../policy/model/catalog.ts';
import { PolicyService } from '../policy/service.ts';
import { evaluateCase, mismatches, type PolicyCase } from '../policy/testing/cases.ts';
import { DataProtection, defaultProtection } from '../protect/service.ts';
import { listUpstreamTools } from '../upstream/list-tools.ts';
import { parseCommandArgs } from './args.ts';
import { openServerPins } from './server-pins.ts';
import { USAGE as USAGES } from './usage.ts';

const USAGE = USAGES.policy!;

export async function policyCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'check') return check(rest);
  if (sub === 'test') return testCases(rest);
  if (sub === 'explain') return explain(rest);
  throw new UsageError(USAGE);
}

const TOOL_OPTIONS = { config: { type: 'string' }, tools: { type: 'string' } } as const;

/** Parse, load tool definitions (a file, else the live upstreams) and validate against the generated schema. */
async function check(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(args, TOOL_OPTIONS);
  if (!values.config) throw new UsageError(USAGE);
  let svc: PolicyService;
  try {
    const loaded = loadConfigFile(values.config);
    svc = await serviceFor(loaded.config.policy, loaded.baseDir, loaded, values.tools);
  } catch (err) {
    if (!(err instanceof ConfigError) || !(err.cause instanceof PolicyError)) throw err;
    process.stdout.write(`policy check failed:\n  ${err.cause.problems.join('\n  ')}\n`);
    return 1;
  }
  const tools = svc.catalog.allTools();
  process.stdout.write(
    `policies valid: ${svc.live.source.policies.length} policies (${svc.live.source.hash}) against ${tools.length} tools\n`,
  );
  for (const t of tools) process.stdout.write(`  ${t.name}  tier=${t.tier}${t.egress ? ' egress' : ''}\n`);
  return 0;
}

/** YAML cases → expected decisions; exit 1 on any mismatch. */
async function testCases(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, TOOL_OPTIONS, true);
  const file = positionals[0];
  if (!file) throw new UsageError(USAGE);
  const doc = parseYamlText(readText(file), file) as JsonObject;
  if (!isObject(doc) || !Array.isArray(doc.cases)) throw new UsageError(`${file}: needs a "cases" list`);
  const base = dirname(resolve(file));
  const configPath =
    values.config ?? (typeof doc.config === 'string' ? resolve(base, doc.config) : undefined);
  const loaded = configPath ? loadConfigFile(configPath) : undefined;
  // `settings:` in the file: any of the config's policy keys (tiers, trustAnnotations, …), for this test only.
  const policy = policySchema.parse({
    ...(loaded?.config.policy ?? {}),
    ...(isObject(doc.settings) ? doc.settings : {}),
  });
  const files = Array.isArray(doc.policies)
    ? doc.policies.map((p) => resolve(base, String(p)))
    : policy.files;
  const tools =
    values.tools ?? (Array.isArray(doc.tools) || typeof doc.tools === 'string' ? doc.tools : undefined);
  if (!loaded && tools === undefined)
    throw new UsageError(`${file}: give tools (in the file or --tools) or a config`);
  let svc: PolicyService;
  try {
    svc = await serviceFor(
      { ...policy, files },
      loaded?.baseDir ?? base,
      loaded,
      typeof tools === 'string' ? resolve(base, tools) : tools,
    );
  } catch (err) {
    if (!(err instanceof ConfigError) || !(err.cause instanceof PolicyError)) throw err;
    process.stdout.write(`policies do not load:\n  ${err.cause.problems.join('\n  ')}\n`);
    return 1;
  }
  let failed = 0;
  (doc.cases as PolicyCase[]).forEach((c, i) => {
    const label = c.name ?? `case ${i + 1}`;
    const problems = mismatches(c, evaluateCase(svc, c));
    if (problems.length > 0) failed++;
    process.stdout.write(
      problems.length === 0 ? `ok      ${label}\n` : `FAILED  ${label}: ${problems.join('; ')}\n`,
    );
  });
  process.stdout.write(`${doc.cases.length - failed} passed, ${failed} failed\n`);
  return failed > 0 ? 1 : 0;
}

async function explain(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(args, {
    ...TOOL_OPTIONS,
    tool: { type: 'string' },
    args: { type: 'string', default: '{}' },
    reason: { type: 'string' },
    principal: { type: 'string' },
    time: { type: 'string' },
    'sensitive-read': { type: 'boolean', default: false },
    tainted: { type: 'boolean', default: false },
    signed: { type: 'boolean', default: false },
  });
  if (!values.config || !values.tool) throw new UsageError(USAGE);
  const loaded = loadConfigFile(values.config);
  const svc = await serviceFor(loaded.config.policy, loaded.baseDir, loaded, values.tools);
  const c: PolicyCase = {
    tool: values.tool,
    arguments: jsonArg(values.args, '--args') as JsonObject,
    ...(values.reason ? { reason: values.reason } : {}),
    ...(values.principal
      ? { principal: jsonArg(values.principal, '--principal') as PolicyCase['principal'] }
      : {}),
    ...(values.time ? { time: values.time } : {}),
    session: { sensitiveRead: values['sensitive-read'], tainted: values.tainted },
    signed: values.signed,
  };
  const out = evaluateCase(svc, c);
  const report =
    out.kind === 'decision'
      ? {
          ...out.decision,
          visibleInLists: out.visible,
          policies: out.decision.determiningPolicies.map((id) => {
            const p = svc.live.policy(id);
            return { id, source: p?.source, text: p?.text };
          }),
        }
      : out;
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  return 0;
}

/** A service whose catalog holds the tools from a JSON file or, failing that, from the live upstreams. */
async function serviceFor(
  policy: PolicyConfig,
  baseDir: string,
  loaded: LoadedConfig | undefined,
  tools: unknown,
): Promise<PolicyService> {
  const log = createLogger('error');
  if (tools === undefined && !loaded) throw new UsageError('no tool definitions: give --tools or a config');
  const listed =
    tools === undefined
      ? await liveTools(loaded!, log)
      : // JSON is YAML: a broken file is reported as FILE:LINE:COL like every other.
        toolsFrom(typeof tools === 'string' ? parseYamlText(readText(tools), tools) : tools);
  const catalog = new Catalog(policy);
  const byUpstream = new Map<string, JsonObject[]>();
  for (const { item, upstream } of listed)
    byUpstream.set(upstream, [...(byUpstream.get(upstream) ?? []), item]);
  for (const [upstream, items] of byUpstream) catalog.updateTools(upstream, items);
  // The config's own detectors, so `context.detected` is what the gateway would put there.
  const protection = loaded ? new DataProtection(loaded.config.protect) : defaultProtection();
  // Loaded once the catalog is known, so the sets validate against the generated schema.
  return new PolicyService(policy, baseDir, {
    log,
    catalog,
    detect: (args) => protection.detect(args),
    // The CLI decides for the operator's eyes only: no call is made, nothing is recorded.
    onSetChange: () => {},
  });
}

/** The live upstreams' tools; each stdio upstream is started only if it matches its server pin. */
async function liveTools(loaded: LoadedConfig, log: Logger) {
  const serverPins = openServerPins(loaded, log);
  try {
    return await listUpstreamTools(loaded, log, serverPins.starts);
  } finally {
    await serverPins.close();
  }
}

/** `[{name, upstream?, inputSchema, annotations}]` or a tools/list result; upstream defaults to the name's prefix. */
function toolsFrom(raw: unknown): { item: JsonObject; upstream: string }[] {
  const list = isObject(raw) && Array.isArray(raw.tools) ? raw.tools : raw;
  if (!Array.isArray(list)) throw new UsageError('tools must be a list of tool definitions');
  return list.filter(isObject).map((item) => ({
    item,
    upstream: typeof item.upstream === 'string' ? item.upstream : String(item.name).split('__')[0]!,
  }));
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    throw new UsageError(`cannot read ${file}`);
  }
}

function jsonArg(text: string, flag: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`${flag} must be JSON`);
  }
}
