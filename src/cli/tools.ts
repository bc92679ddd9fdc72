import { randomUUID } from 'node:crypto';
import { ApproverRole } from '../approval/approvers.ts';
import { AuditService } from '../audit/service.ts';
import { type LoadedConfig, loadConfigFile } from '../config/load.ts';
import { UsageError } from '../errors.ts';
import { isObject } from '../jsonrpc.ts';
import { createLogger } from '../observability/log.ts';
import { PinAdmin } from '../pinning/admin.ts';
import { PinEvents } from '../pinning/events.ts';
import { INSTRUCTIONS, type Pin, PinStore } from '../pinning/pins.ts';
import { tierOf } from '../policy/model/catalog.ts';
import { openRecordStore } from '../state/open.ts';
import { exposeName } from '../upstream/naming.ts';
import { parseCommandArgs, required } from './args.ts';

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  as: { type: 'string' },
  reason: { type: 'string' },
  json: { type: 'boolean' },
} as const;

const USAGE =
  'tools list [--json] | approve UPSTREAM TOOL --as NAME | quarantine UPSTREAM TOOL --as NAME --reason TEXT';

const out = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

/**
 * `portcullis tools list | approve | quarantine`: the pins every replica
 * shares. The operator is named by `--as` (one of
 * `approvals.approvers.operators`); every change is an audit record.
 */
export async function toolsCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, OPTIONS, true);
  const [verb, upstream, tool, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected ${extra.join(' ')}`);
  const loaded = loadConfigFile(required(values.config, '--config'));
  const log = createLogger('error');
  const store = openRecordStore(loaded.config.state, loaded.baseDir);
  const audit = AuditService.fromConfig(loaded, log);
  const exposed = (up: string, name: string) => exposeName(loaded.config.upstreams[up]?.prefix ?? up, name);
  const events = new PinEvents({
    journal: (record) => audit.append(record),
    announcer: { announce() {} },
    log,
    now: Date.now,
    newId: randomUUID,
    exposed,
  });
  const admin = new PinAdmin(new PinStore(store), events, Date.now);
  try {
    switch (verb) {
      case 'list':
        return list(
          (await admin.list()).map((p) => describe(loaded, p)),
          values.json,
        );
      case 'approve': {
        const operator = new ApproverRole(loaded.config.approvals.approvers).operator(values.as);
        const up = required(upstream, 'UPSTREAM');
        const done = await admin.approve(up, required(tool, 'TOOL'), operator);
        process.stdout.write(done.diff);
        out(
          JSON.stringify({
            event: 'approved',
            pin: `${up}/${done.pin.tool}`,
            hash: done.pin.current.hash,
            by: operator,
          }),
        );
        return 0;
      }
      case 'quarantine': {
        const operator = new ApproverRole(loaded.config.approvals.approvers).operator(values.as);
        const reason = required(values.reason, '--reason');
        const up = required(upstream, 'UPSTREAM');
        const pin = await admin.quarantine(up, required(tool, 'TOOL'), operator, reason);
        out(JSON.stringify({ event: 'quarantined', pin: `${up}/${pin.tool}`, reason, by: operator }));
        return 0;
      }
      default:
        throw new UsageError(USAGE);
    }
  } finally {
    await audit.close();
    await store.close();
  }
}

/** One pin as `tools list` shows it. */
function describe(loaded: LoadedConfig, pin: Pin) {
  const policy = loaded.config.policy;
  const configured = loaded.config.upstreams[pin.upstream];
  const name = pin.tool === INSTRUCTIONS ? null : exposeNameOf(loaded, pin);
  const def = pin.current.definition;
  const annotations = isObject(def) && isObject(def.annotations) ? def.annotations : {};
  const tier =
    name && configured
      ? tierOf(name, policy, policy.trustAnnotations.includes(pin.upstream), annotations)
      : null;
  return {
    upstream: pin.upstream,
    tool: pin.tool,
    exposed: name,
    tier,
    state: pin.status,
    reason: pin.reason,
    hash: pin.current.hash,
    score: pin.current.score,
    findings: pin.current.findings,
    ...(pin.pending
      ? { pending: { hash: pin.pending.hash, score: pin.pending.score, findings: pin.pending.findings } }
      : {}),
    firstSeenAt: new Date(pin.firstSeenAt).toISOString(),
    updatedAt: new Date(pin.updatedAt).toISOString(),
    by: pin.by ?? null,
  };
}

const exposeNameOf = (loaded: LoadedConfig, pin: Pin): string =>
  exposeName(loaded.config.upstreams[pin.upstream]?.prefix ?? pin.upstream, pin.tool);

function list(pins: ReturnType<typeof describe>[], json: boolean | undefined): number {
  const sorted = pins.sort((a, b) => `${a.upstream}/${a.tool}`.localeCompare(`${b.upstream}/${b.tool}`));
  if (json) {
    out(JSON.stringify(sorted));
    return 0;
  }
  if (sorted.length === 0) out('no tools pinned yet: a gateway pins each tool the first time it is listed');
  for (const p of sorted) {
    const findings = [...p.findings, ...(p.pending?.findings ?? [])].map((f) => `${f.rule}(${f.score})`);
    out(
      [
        p.state.padEnd(11),
        `${p.upstream}/${p.tool}`,
        p.exposed ? `as ${p.exposed}` : 'server instructions',
        `tier ${p.tier ?? '?'}`,
        p.reason ? `reason: ${p.reason}` : '',
        p.pending ? 'a changed definition waits for approval' : '',
        findings.length > 0 ? `findings: ${[...new Set(findings)].join(', ')}` : '',
      ]
        .filter(Boolean)
        .join('  '),
    );
  }
  return 0;
}
