import { ApproverRole } from '../approval/approvers.ts';
import { ApprovalService } from '../approval/service.ts';
import type { Approval, ApprovalStatus } from '../approval/types.ts';
import { approvalDetail, approvalSummary } from '../approval/view.ts';
import { AuditService } from '../audit/service.ts';
import { loadConfigFile } from '../config/load.ts';
import { PortcullisError, UsageError } from '../errors.ts';
import { createLogger } from '../observability/log.ts';
import { openRecordStore } from '../state/open.ts';
import { parseCommandArgs, required } from './args.ts';

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  as: { type: 'string' },
  comment: { type: 'string' },
  'args-hash': { type: 'string' },
  all: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

const out = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

/**
 * `portcullis approvals list | show ID | approve ID | deny ID`: the operator
 * running it decides, named by `--as` (one of `approvals.approvers.operators`),
 * and every decision is an audit record, as through the admin API.
 */
export async function approvalsCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, OPTIONS, true);
  const [verb, id, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected ${extra.join(' ')}`);
  const loaded = loadConfigFile(required(values.config, '--config'));
  const log = createLogger('error');
  const store = openRecordStore(loaded.config.state, loaded.baseDir);
  const audit = AuditService.fromConfig(loaded, log);
  const approvals = new ApprovalService({
    store,
    journal: (record) => audit.append(record),
    announcer: { announce() {} },
    log,
    now: Date.now,
    ttlMs: loaded.config.approvals.ttlMs,
    gateway: 'cli',
  });
  try {
    switch (verb) {
      case 'list':
        return list(await approvals.list(values.all ? undefined : ['pending', 'granted']), values.json);
      case 'show':
        return show(await approvals.get(required(id, 'an approval id')), values.json);
      case 'approve':
      case 'deny': {
        const role = new ApproverRole(loaded.config.approvals.approvers);
        const approver = role.operator(values.as);
        const comment = verb === 'deny' ? required(values.comment, '--comment') : (values.comment ?? '');
        const act = { approver, channel: 'cli' as const, comment, at: Date.now() };
        const verdict = verb === 'approve' ? 'grant' : 'deny';
        const a = await approvals.decide(required(id, 'an approval id'), verdict, act, values['args-hash']);
        out(
          JSON.stringify({
            event: verdict === 'grant' ? 'approved' : 'denied',
            id: a.id,
            status: a.status,
            grants: a.grants.length,
            required: a.required,
          }),
        );
        return 0;
      }
      default:
        throw new UsageError(
          'approvals list | show ID | approve ID --as NAME | deny ID --as NAME --comment TEXT',
        );
    }
  } finally {
    await audit.close();
    await store.close();
  }
}

function list(items: Approval[], json: boolean | undefined): number {
  if (json) {
    out(JSON.stringify(items.map(approvalSummary)));
    return 0;
  }
  if (items.length === 0) out('no approvals waiting');
  for (const a of items) {
    const left = Math.max(0, Math.round((a.expiresAt - Date.now()) / 1000));
    out(
      `${a.id}  ${pad(a.status)}  ${a.tool}  by ${a.principalLabel}  ${a.grants.length}/${a.required}  ${left}s left  reason: ${a.reason}`,
    );
  }
  return 0;
}

function show(a: Approval | undefined, json: boolean | undefined): number {
  if (!a) throw new PortcullisError('ERR_APPROVAL_UNKNOWN', 'no such approval');
  if (json) out(JSON.stringify(a));
  else out(JSON.stringify(approvalDetail(a), null, 2));
  return 0;
}

const pad = (s: ApprovalStatus): string => s.padEnd(9);
