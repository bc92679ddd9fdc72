import { AuditError } from '../audit/errors.ts';
import { parseVerifierKey, type Signer } from '../audit/note.ts';
import { auditSigner } from '../audit/open.ts';
import { type ReplayReport, replayFailure, replayFilter, replayLog } from '../audit/replay.ts';
import type { CallArguments, CallOutcome, ReplayCall, ReplayEntry } from '../audit/replay-calls.ts';
import type { AuditStore } from '../audit/store.ts';
import type { PortcullisError } from '../errors.ts';
import { silentLogger } from '../observability/log.ts';
import { parseCommandArgs, required } from './args.ts';
import { auditSetupFromConfig, quiet, signHead, withStore } from './audit-store.ts';

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/**
 * `portcullis audit replay`: the calls of a session, a principal or a time
 * span, each entry proven against the latest signed checkpoint (see
 * `replayLog`); exit 1 with ERR_AUDIT_TAMPERED naming the first entry that is not.
 */
export async function replayCommand(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(args, {
    config: { type: 'string' },
    session: { type: 'string' },
    principal: { type: 'string' },
    since: { type: 'string' },
    key: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  const setup = auditSetupFromConfig(required(values.config, '--config'));
  const filter = replayFilter(values, Date.now());
  const { report, unsigned } = await withStore(setup, async (store) => {
    if (values.key)
      return { report: await replayLog(store, parseVerifierKey(values.key), filter), unsigned: undefined };
    const signer = auditSigner(setup, quiet);
    const unsigned = await coverHead(store, signer);
    return { report: await replayLog(store, signer, filter), unsigned };
  });
  const failure = replayFailure(report) ?? unsigned;
  if (values.json) out(JSON.stringify({ ok: failure === undefined, ...report, ...errorOf(failure) }));
  else printReport(report);
  if (failure) throw failure;
  return 0;
}

/**
 * Signs the head when it grew past the last checkpoint, so the replay covers
 * it. A log that no longer extends that checkpoint is not signed: the replay
 * then proves what it can against the stored one, and this says why.
 */
async function coverHead(store: AuditStore, signer: Signer): Promise<AuditError | undefined> {
  const head = await store.head();
  const last = (await store.checkpoints()).at(-1);
  if (last && last.size >= head.size) return undefined;
  try {
    await signHead(store, signer, silentLogger);
    return undefined;
  } catch (err) {
    if (err instanceof AuditError) return err;
    throw err;
  }
}

const errorOf = (e: PortcullisError | undefined) =>
  e ? { error: { code: e.code, message: e.message, detail: e.detail } } : {};

function printReport(r: ReplayReport): void {
  for (const call of r.calls) printCall(call);
  const { size, root } = r.checkpoint;
  out(`verified: ${r.verified} entries against checkpoint ${size} ${root}`);
  if (r.logSize > size) out(`not replayed: entries ${size}..${r.logSize - 1}, past the checkpoint`);
  for (const t of r.tampered) out(`TAMPERED: entry ${t.index} (${t.code}): ${t.reason}`);
}

const or = (v: string | number | null | undefined, none = '-'): string =>
  v === null || v === undefined || v === '' ? none : String(v);

function printCall(c: ReplayCall): void {
  const time = c.time === null ? '-' : new Date(c.time).toISOString();
  out(`${time}  call ${c.callId}  ${or(c.method)} ${or(c.tool, '')}`.trimEnd());
  out(`  principal ${or(c.principal)}  session ${or(c.session)}`);
  if (c.decision) {
    const d = c.decision;
    out(
      `  decision  ${d.effect}  policies ${d.determiningPolicies.join(', ') || '-'}  obligations ${d.obligations.join(', ') || '-'}`,
    );
  }
  if (c.approvalId || c.breakGlassId)
    out(`  approval  ${or(c.approvalId)}  break-glass ${or(c.breakGlassId)}`);
  if (c.args) out(`  args      ${argsText(c.args)}`);
  out(`  outcome   ${c.outcome ? outcomeText(c.outcome) : 'none recorded'}`);
  for (const e of c.entries) out(`  #${e.index} ${e.type}${eventOf(e)}  ${entryStatus(e)}`);
}

function argsText(a: CallArguments): string {
  const stored = a.stored as { blob?: unknown; bytes?: unknown } | null;
  if (stored && typeof stored.blob === 'string')
    return `stored beside the log: blob ${stored.blob} (${stored.bytes} bytes)`;
  return `${JSON.stringify(a.stored)} (${a.clear ? 'clear' : 'keyed hashes'})`;
}

function outcomeText(o: CallOutcome): string {
  const upstream = o.upstream === null ? 'not forwarded' : `upstream ${o.upstream}`;
  const error = o.error ?? (o.rpcError === null ? null : `rpc ${o.rpcError}`);
  return `${o.status}${error ? ` ${error}` : ''}  ${upstream}  ${or(o.latencyMs)} ms`;
}

/** What happened, for a record of a life (an approval's, a window's, an operator's act): ` granted`, ` revoked`. */
const eventOf = (e: ReplayEntry): string => (typeof e.record.event === 'string' ? ` ${e.record.event}` : '');

const entryStatus = (e: ReplayEntry): string =>
  e.verified ? 'verified' : `NOT VERIFIED${e.problems.map((p) => `: ${p.code}: ${p.reason}`).join('')}`;
