import { breakGlassSchema } from '../../src/approval/config.ts';
import type { ApprovalEvent } from '../../src/approval/types.ts';
import { BreakGlass } from '../../src/breakglass/guard.ts';
import type { Logger } from '../../src/observability/log.ts';
import { silentLogger } from '../../src/observability/log.ts';
import type { RecordStore } from '../../src/state/records.ts';
import { MemoryRecords } from '../approval/memory-records.ts';

/** A break-glass guard over an empty store, never started: no window is ever in force. */
export const noBreakGlass = (): BreakGlass =>
  new BreakGlass({
    store: new MemoryRecords(),
    journal: async () => 0,
    announcer: { announce() {} },
    log: silentLogger,
    now: Date.now,
    config: breakGlassSchema.parse({}),
    upstreams: [],
  });

/** A break-glass guard on a store and clock of the test's choosing, keeping what it records, announces and logs. */
export function breakGlassWith(store: RecordStore, opts: { now: () => number; upstreams?: string[] }) {
  const records: Record<string, unknown>[] = [];
  const announced: ApprovalEvent[] = [];
  const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  let failJournal = false;
  const keep =
    (level: string) =>
    (msg: string, fields: Record<string, unknown> = {}) =>
      lines.push({ level, msg, fields });
  const log: Logger = { debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') };
  const guard = new BreakGlass({
    store,
    journal: async (record) => {
      if (failJournal) throw new Error('audit log down');
      return records.push(record) - 1;
    },
    announcer: { announce: (e) => announced.push(e) },
    log,
    now: opts.now,
    config: breakGlassSchema.parse({ maxTtlMs: 3_600_000, requestTtlMs: 600_000 }),
    upstreams: opts.upstreams ?? ['fs', 'crm'],
  });
  return {
    guard,
    records,
    announced,
    lines,
    /** The `event` of every break-glass audit record, in order. */
    events: () => records.map((r) => String(r.event)),
    failJournal: (fail: boolean) => (failJournal = fail),
  };
}
