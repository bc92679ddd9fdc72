import assert from 'node:assert/strict';
import { copyFileSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openAudit } from '../../src/audit/open.ts';
import { AuditService } from '../../src/audit/service.ts';
import { createLogger } from '../../src/observability/log.ts';
import type { CallContext } from '../../src/pipeline/context.ts';
import { auditDecisionStage, decisionStableStage } from '../../src/pipeline/stages/audit-decision.ts';
import { testCallContext } from '../helpers.ts';
import { auditFixture } from './helpers.ts';

const call = (): CallContext =>
  testCallContext({
    request: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'probe__echo', arguments: {} } },
  });

/** A gateway's audit service on a fresh SQLite log, with its log lines kept. */
async function service() {
  const f = auditFixture('sqlite');
  const lines: Record<string, unknown>[] = [];
  const log = createLogger('debug', (l) => lines.push(JSON.parse(l)));
  const audit = new AuditService(() => openAudit(f.setup, log));
  // What stands between a call and forward: its decision record committed, then stable.
  const decision = auditDecisionStage(audit);
  const stable = decisionStableStage(audit);
  const stage = {
    run: async (ctx: CallContext) => {
      await decision.run(ctx);
      await stable.run(ctx);
    },
  };
  await stage.run(call());
  return { f, lines, audit, stage, path: f.setup.config.path };
}

const alerts = (lines: Record<string, unknown>[]) =>
  lines.filter((l) => l.level === 'error' && /AUDIT LOG FILE DELETED OR REPLACED/.test(String(l.msg)));

describe('an audit database file that goes away while the gateway runs', () => {
  it('denies the next call once the file was deleted, and says why in an error line', async () => {
    const { lines, audit, stage, path } = await service();
    unlinkSync(path);
    await assert.rejects(async () => stage.run(call()), { code: 'ERR_AUDIT_UNAVAILABLE' });
    const [alert] = alerts(lines);
    assert.equal(alert?.what, 'deleted');
    assert.equal(alert?.path, path);
    await assert.rejects(async () => stage.run(call()), { code: 'ERR_AUDIT_UNAVAILABLE' });
    assert.equal(alerts(lines).length, 1, 'one alert, not one per call');
    await audit.close();
  });

  it('denies the next call once another file took its place', async () => {
    const { f, lines, audit, stage, path } = await service();
    const other = join(f.dir, 'other.db');
    copyFileSync(path, other);
    renameSync(other, path);
    await assert.rejects(async () => stage.run(call()), { code: 'ERR_AUDIT_UNAVAILABLE' });
    assert.equal(alerts(lines)[0]?.what, 'replaced by another file');
    await audit.close();
  });
});
