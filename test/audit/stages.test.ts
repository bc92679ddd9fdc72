import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openAudit } from '../../src/audit/open.ts';
import { AuditService } from '../../src/audit/service.ts';
import { SqliteAuditStore } from '../../src/audit/store-sqlite.ts';
import { Denial, JSONRPC } from '../../src/errors.ts';
import { resultResponse } from '../../src/jsonrpc.ts';
import { silentLogger } from '../../src/observability/log.ts';
import type { CallContext } from '../../src/pipeline/context.ts';
import { createPipeline, fail } from '../../src/pipeline/runner.ts';
import { auditDecisionStage } from '../../src/pipeline/stages/audit-decision.ts';
import { auditOutcomeStage } from '../../src/pipeline/stages/audit-outcome.ts';
import { testCallContext } from '../helpers.ts';
import { auditFixture } from './helpers.ts';

const call = (args: unknown): CallContext =>
  testCallContext({
    request: {
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'probe__echo', arguments: args as never },
    },
  });

async function leaves(path: string) {
  const store = new SqliteAuditStore(path);
  const head = await store.head();
  const all = (await store.entries(0, head.size)).map(
    (e) => JSON.parse(e.leaf.toString()) as Record<string, unknown>,
  );
  await store.close();
  return all;
}

describe('the audit stages', () => {
  it('deny with a typed, generic error when the audit log cannot be opened', async () => {
    const audit = new AuditService(async () => {
      throw new Error('disk on fire');
    });
    await assert.rejects(
      async () => auditDecisionStage(audit).run(call({})),
      (err: Error & { code: string; publicMessage: string }) => {
        assert.equal(err.code, 'ERR_AUDIT_UNAVAILABLE');
        assert.equal(err.publicMessage, 'Request denied');
        return true;
      },
    );
  });

  it('deny a call whose arguments cannot be canonicalised, and still record its outcome', async () => {
    const f = auditFixture('sqlite');
    const audit = new AuditService(() => openAudit(f.setup, silentLogger));
    const ctx = call({ text: '\ud800' });
    await assert.rejects(async () => auditDecisionStage(audit).run(ctx), { code: 'ERR_AUDIT_UNAVAILABLE' });
    await auditOutcomeStage(audit).run(ctx);
    await audit.close();
    const all = await leaves(f.setup.config.path);
    assert.equal(all.length, 1);
    assert.equal(all[0]!.type, 'outcome');
    assert.equal(all[0]!.decisionIndex, null);
  });

  it('withhold a result whose outcome record cannot be made durable, answering with a generic denial', async () => {
    const f = auditFixture('sqlite');
    const audit = new AuditService(() => openAudit(f.setup, silentLogger));
    const ctx = call({ text: 'hi' });
    const logged: Record<string, unknown>[] = [];
    const pipeline = createPipeline(
      [
        auditDecisionStage(audit),
        { name: 'disk-goes-away', run: async () => (await audit.ready).log.close() },
        {
          name: 'forward',
          run: (c) => {
            c.response = resultResponse(1, { content: [{ type: 'text', text: 'the secret' }] });
          },
        },
      ],
      [auditOutcomeStage(audit)],
      { error: (_msg, fields) => logged.push(fields) },
    );
    await pipeline.run(ctx);
    assert.equal(ctx.error?.code, 'ERR_AUDIT_UNAVAILABLE');
    assert.equal(logged[0]?.stage, 'audit-outcome');
    assert.equal(ctx.response?.result, undefined);
    assert.deepEqual(ctx.response?.error, { code: JSONRPC.DENIED, message: 'Request denied' });
    const all = await leaves(f.setup.config.path);
    assert.deepEqual(
      all.map((r) => r.type),
      ['decision'],
    );
  });

  it('withhold an upstream error response too, with whatever data it carries', async () => {
    const f = auditFixture('sqlite');
    const audit = new AuditService(() => openAudit(f.setup, silentLogger));
    const ctx = call({ text: 'hi' });
    ctx.response = {
      jsonrpc: '2.0',
      id: 1,
      error: { code: -32000, message: 'boom', data: { row: 'the secret' } },
    };
    await (await audit.ready).log.close();
    await assert.rejects(async () => auditOutcomeStage(audit).run(ctx), { code: 'ERR_AUDIT_UNAVAILABLE' });
    assert.deepEqual(ctx.response.error, { code: JSONRPC.DENIED, message: 'Request denied' });
  });

  it('keep the denial the gateway already gave when its outcome record cannot be written', async () => {
    const f = auditFixture('sqlite');
    const audit = new AuditService(() => openAudit(f.setup, silentLogger));
    const ctx = call({ text: 'hi' });
    fail(ctx, new Denial('ERR_POLICY_DENIED', 'forbid'));
    await (await audit.ready).log.close();
    await assert.rejects(async () => auditOutcomeStage(audit).run(ctx), { code: 'ERR_AUDIT_UNAVAILABLE' });
    assert.equal(ctx.error?.code, 'ERR_POLICY_DENIED');
    assert.deepEqual(ctx.response?.error, { code: JSONRPC.DENIED, message: 'Denied by policy' });
  });

  it('link the outcome to the decision made durable before it', async () => {
    const f = auditFixture('sqlite');
    const audit = new AuditService(() => openAudit(f.setup, silentLogger));
    const ctx = call({ text: 'hi' });
    await auditDecisionStage(audit).run(ctx);
    ctx.response = resultResponse(1, { content: [] });
    await auditOutcomeStage(audit).run(ctx);
    await audit.close();
    const all = await leaves(f.setup.config.path);
    assert.deepEqual(
      all.map((r) => [r.type, r.decisionIndex]),
      [
        ['decision', undefined],
        ['outcome', 0],
      ],
    );
  });
});

describe('whether the audit log needs a restart', () => {
  it('says no while it opens and once open, and yes once it failed to open (it is not tried again)', async () => {
    const f = auditFixture('sqlite');
    const opening = new AuditService(() => openAudit(f.setup, silentLogger));
    assert.equal(opening.needsRestart(), false);
    await opening.ready;
    assert.equal(opening.needsRestart(), false);
    await opening.close();
    const failed = new AuditService(async () => {
      throw new Error('disk on fire');
    });
    await assert.rejects(failed.ready);
    assert.equal(failed.needsRestart(), true);
  });
});
