import { ApproverRole } from '../approval/approvers.ts';
import { WebhookNotifier } from '../approval/webhooks.ts';
import { AuditService } from '../audit/service.ts';
import { BreakGlass } from '../breakglass/guard.ts';
import type { BreakGlassService } from '../breakglass/service.ts';
import { APPROVERS_NEEDED, type BreakGlassWindow } from '../breakglass/window.ts';
import { type LoadedConfig, loadConfigFile } from '../config/load.ts';
import { PortcullisError, UsageError } from '../errors.ts';
import { parseDuration } from '../identity/gateway-tokens.ts';
import { createLogger } from '../observability/log.ts';
import { openRecordStore } from '../state/open.ts';
import { parseCommandArgs, required } from './args.ts';

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  as: { type: 'string' },
  scope: { type: 'string' },
  ttl: { type: 'string', default: '15m' },
  reason: { type: 'string' },
  comment: { type: 'string' },
  all: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

type Values = ReturnType<typeof parseCommandArgs<typeof OPTIONS>>['values'];

const out = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

/**
 * `portcullis breakglass open | approve ID | close ID | list`: the operators
 * named by `--as` (each one of `approvals.approvers.operators`) ask for, open
 * and close windows; every step is an audit record and an alert (a warning on
 * stderr and the configured webhooks).
 */
export async function breakglassCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, OPTIONS, true);
  const [verb, id, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected ${extra.join(' ')}`);
  if (!['open', 'approve', 'close', 'list'].includes(verb ?? '')) throw new UsageError(SHORT_USAGE);
  const loaded = loadConfigFile(required(values.config, '--config'));
  const log = createLogger('warn');
  const store = openRecordStore(loaded.config.state, loaded.baseDir);
  const audit = AuditService.fromConfig(loaded, log);
  const announcer = new WebhookNotifier(loaded.config.approvals.webhooks, {
    logger: log,
    baseDir: loaded.baseDir,
  });
  const breakGlass = new BreakGlass({
    store,
    journal: (record) => audit.append(record),
    announcer,
    log,
    now: Date.now,
    config: loaded.config.approvals.breakGlass,
    upstreams: Object.keys(loaded.config.upstreams),
  });
  try {
    if (verb === 'list')
      return list(await breakGlass.windows.list(values.all ? undefined : ['requested', 'open']), values.json);
    return await change(breakGlass.windows, loaded, verb!, id, values);
  } finally {
    // The alerts go out before the command ends.
    await announcer.idle();
    await announcer.close();
    await audit.close();
    await store.close();
  }
}

async function change(
  windows: BreakGlassService,
  loaded: LoadedConfig,
  verb: string,
  id: string | undefined,
  values: Values,
): Promise<number> {
  const operator = await operatorOf(windows, loaded, verb === 'open' ? undefined : id, values);
  const act = { approver: operator, channel: 'cli' as const, comment: values.comment ?? '', at: Date.now() };
  let w: BreakGlassWindow;
  if (verb === 'open') {
    if (id !== undefined) throw new UsageError(`unexpected ${id}`);
    w = await windows.request({
      scope: required(values.scope, '--scope'),
      ttlMs: parseDuration(values.ttl) * 1000,
      reason: required(values.reason, '--reason'),
      by: operator,
    });
  } else if (verb === 'approve') w = await windows.approve(required(id, 'a window id'), act);
  else w = await windows.close(required(id, 'a window id'), act);
  out(
    JSON.stringify({
      event: w.status === 'open' && verb === 'approve' ? 'opened' : EVENT[verb],
      ...brief(w),
    }),
  );
  return 0;
}

/** `operator:NAME` for `--as NAME`; a name without the role is refused, and recorded when it named a window. */
async function operatorOf(
  windows: BreakGlassService,
  loaded: LoadedConfig,
  id: string | undefined,
  values: Values,
): Promise<string> {
  try {
    return new ApproverRole(loaded.config.approvals.approvers).operator(values.as);
  } catch (err) {
    if (id && values.as && err instanceof PortcullisError && err.code === 'ERR_APPROVER_NOT_ALLOWED') {
      const act = { approver: `operator:${values.as}`, channel: 'cli' as const, comment: '', at: Date.now() };
      await windows.recordRefusal(id, act, err.code);
    }
    throw err;
  }
}

const EVENT: Record<string, string> = { open: 'requested', approve: 'approved', close: 'closed' };

function list(windows: BreakGlassWindow[], json: boolean | undefined): number {
  if (json) {
    out(JSON.stringify(windows.map(brief)));
    return 0;
  }
  if (windows.length === 0) out('no break-glass windows requested or open');
  for (const w of windows) {
    const left = Math.max(0, Math.round((w.expiresAt - Date.now()) / 1000));
    out(
      `${w.id}  ${w.status.padEnd(9)}  ${w.scope}  by ${w.openedBy}  ${w.approvers.length}/${APPROVERS_NEEDED}  ${left}s left  reason: ${w.reason}`,
    );
  }
  return 0;
}

const brief = (w: BreakGlassWindow) => ({
  id: w.id,
  status: w.status,
  scope: w.scope,
  reason: w.reason,
  openedBy: w.openedBy,
  approvers: w.approvers.map((a) => a.approver),
  ttlMs: w.ttlMs,
  requestedAt: new Date(w.requestedAt).toISOString(),
  ...(w.openedAt !== undefined ? { openedAt: new Date(w.openedAt).toISOString() } : {}),
  expiresAt: new Date(w.expiresAt).toISOString(),
  ...(w.closedBy ? { closedBy: w.closedBy } : {}),
});

const SHORT_USAGE =
  'breakglass open --scope S --ttl 15m --reason TEXT --as NAME | approve ID --as NAME | close ID --as NAME | list';
