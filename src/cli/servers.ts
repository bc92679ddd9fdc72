import { ApproverRole } from '../approval/approvers.ts';
import { type LoadedConfig, loadConfigFile } from '../config/load.ts';
import type { StdioUpstreamConfig } from '../config/schema.ts';
import { PortcullisError, UsageError } from '../errors.ts';
import { createLogger } from '../observability/log.ts';
import { configMismatches, entryOf, type Fingerprint, storedMismatches } from '../serverpin/fingerprint.ts';
import { UnverifiableLaunch } from '../serverpin/packages.ts';
import type { ServerPin } from '../serverpin/store.ts';
import { pinnedLaunch } from '../upstream/starts.ts';
import { parseCommandArgs, required } from './args.ts';
import { type CliServerPins, openServerPins } from './server-pins.ts';

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  as: { type: 'string' },
  json: { type: 'boolean' },
} as const;

const USAGE = 'servers list [--json] | show NAME [--json] | pin NAME --as NAME | approve NAME --as NAME';

const out = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

/**
 * `portcullis servers list | show | pin | approve`: the hashes each stdio
 * upstream must match to start. `pin` and `approve` record what the upstream
 * would run now, as the operator named by `--as`; each is an audit record.
 */
export async function serversCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, OPTIONS, true);
  const [verb, name, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected ${extra.join(' ')}`);
  const loaded = loadConfigFile(required(values.config, '--config'));
  const sp = openServerPins(loaded, createLogger('error'));
  try {
    switch (verb) {
      case 'list':
        return await list(loaded, sp, values.json);
      case 'show':
        return await show(loaded, sp, required(name, 'NAME'), values.json);
      case 'pin': {
        const operator = new ApproverRole(loaded.config.approvals.approvers).operator(values.as);
        const up = required(name, 'NAME');
        const done = await sp.admin.pin(launchOf(loaded, up), operator);
        out(
          JSON.stringify({
            event: done.changed ? 'pinned' : 'unchanged',
            upstream: up,
            digest: done.pin.pinned.digest,
            by: operator,
          }),
        );
        return 0;
      }
      case 'approve': {
        const operator = new ApproverRole(loaded.config.approvals.approvers).operator(values.as);
        const up = required(name, 'NAME');
        const done = await sp.admin.approve(launchOf(loaded, up), operator);
        for (const line of changes(done.previous, done.pin.pinned)) out(line);
        out(
          JSON.stringify({
            event: 'approved',
            upstream: up,
            digest: done.pin.pinned.digest,
            previous: done.previous.digest,
            by: operator,
          }),
        );
        return 0;
      }
      default:
        throw new UsageError(USAGE);
    }
  } finally {
    await sp.close();
  }
}

function stdioConfig(loaded: LoadedConfig, name: string): StdioUpstreamConfig {
  const cfg = loaded.config.upstreams[name];
  if (cfg?.transport !== 'stdio')
    throw new PortcullisError('ERR_SERVER_PIN_UNKNOWN', `no stdio upstream named ${name}`);
  return cfg;
}

const launchOf = (loaded: LoadedConfig, name: string) =>
  pinnedLaunch(name, stdioConfig(loaded, name), loaded.baseDir);

const stdioNames = (loaded: LoadedConfig): string[] =>
  Object.entries(loaded.config.upstreams)
    .filter(([, u]) => u.transport === 'stdio')
    .map(([n]) => n)
    .sort();

/** Every stdio upstream with where its pin comes from and its state; nothing is hashed. */
async function list(loaded: LoadedConfig, sp: CliServerPins, json: boolean | undefined): Promise<number> {
  const stored = new Map((await sp.store.list()).map((p) => [p.upstream, p]));
  const rows = stdioNames(loaded).map((name) => describe(name, stdioConfig(loaded, name), stored.get(name)));
  if (json) {
    out(JSON.stringify(rows));
    return 0;
  }
  for (const r of rows) {
    out(
      [
        r.state.padEnd(10),
        r.upstream,
        `pin: ${r.source}`,
        r.digest ? `digest ${r.digest.slice(0, 16)}` : '',
        r.pending ? `refused ${r.pending.slice(0, 16)}: portcullis servers approve ${r.upstream}` : '',
      ]
        .filter(Boolean)
        .join('  '),
    );
  }
  return 0;
}

function describe(name: string, cfg: StdioUpstreamConfig, pin: ServerPin | undefined) {
  if (cfg.pin)
    return {
      upstream: name,
      source: 'config',
      state: 'pinned',
      pin: cfg.pin,
      digest: null,
      pending: null,
      by: null,
    };
  if (!pin)
    return {
      upstream: name,
      source: 'none',
      state: 'unpinned',
      pin: null,
      digest: null,
      pending: null,
      by: null,
    };
  return {
    upstream: name,
    source: pin.origin === 'first-use' ? 'first-use' : 'operator',
    state: pin.status,
    pin: null,
    digest: pin.pinned.digest,
    pending: pin.pending?.digest ?? null,
    by: pin.by ?? null,
    updatedAt: new Date(pin.updatedAt).toISOString(),
  };
}

/** What the upstream would run now, hashed, and whether that matches its pin. */
async function show(
  loaded: LoadedConfig,
  sp: CliServerPins,
  name: string,
  json: boolean | undefined,
): Promise<number> {
  const cfg = stdioConfig(loaded, name);
  const stored = (await sp.store.list()).find((p) => p.upstream === name);
  let actual: Fingerprint;
  try {
    actual = (await sp.pins.inspect(launchOf(loaded, name))).actual;
  } catch (err) {
    if (!(err instanceof UnverifiableLaunch)) throw err;
    throw new PortcullisError('ERR_SERVER_UNVERIFIED', `${name}: ${err.message}`);
  }
  const differs = cfg.pin
    ? configMismatches(actual, cfg.pin)
    : stored
      ? storedMismatches(actual, stored.pinned)
      : [];
  const report = {
    ...describe(name, cfg, stored),
    actual,
    entry: entryOf(actual),
    matches: differs.length === 0 && (cfg.pin !== undefined || stored?.status !== 'refused'),
    differs,
  };
  if (json) out(JSON.stringify(report));
  else if (report.source === 'none') {
    out(
      `${name}: not pinned yet: its next start pins what is listed here (or: portcullis servers pin ${name})`,
    );
  } else {
    out(
      `${name}: ${report.matches ? 'matches its pin' : `does not match its pin (${differs.join(', ') || 'refused until approved'})`} [pin: ${report.source}]`,
    );
  }
  if (!json) {
    for (const f of actual.files) out(`  ${f.role.padEnd(11)} ${f.sha256}  ${f.path}`);
    if (actual.package)
      out(
        `  package     ${actual.package.sha256}  ${actual.package.name}@${actual.package.version} (${actual.package.files} files) ${actual.package.integrity ?? ''}`,
      );
    out(`  digest      ${actual.digest}`);
  }
  return report.matches ? 0 : 1;
}

/** One line per hash that an approval replaces. */
function changes(before: Fingerprint, after: Fingerprint): string[] {
  const lines: string[] = [];
  for (const f of after.files) {
    const old = before.files.find((b) => b.role === f.role);
    if (old?.sha256 !== f.sha256)
      lines.push(`${f.role}: ${old?.sha256 ?? '(none)'} -> ${f.sha256}  ${f.path}`);
  }
  const [a, b] = [before.package, after.package];
  if (b && (a?.sha256 !== b.sha256 || a?.version !== b.version))
    lines.push(`package ${b.name}: ${a ? `${a.version} ${a.sha256}` : '(none)'} -> ${b.version} ${b.sha256}`);
  return lines;
}
