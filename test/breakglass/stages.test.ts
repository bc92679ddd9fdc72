import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openAudit } from '../../src/audit/open.ts';
import { AuditService } from '../../src/audit/service.ts';
import { SqliteAuditStore } from '../../src/audit/store-sqlite.ts';
import type { Principal } from '../../src/identity/principal.ts';
import { silentLogger } from '../../src/observability/log.ts';
import type { CallContext } from '../../src/pipeline/context.ts';
import { auditDecisionStage } from '../../src/pipeline/stages/audit-decision.ts';
import { authorizeStage } from '../../src/pipeline/stages/authorize.ts';
import { breakGlassStage } from '../../src/pipeline/stages/break-glass.ts';
import { PolicyService } from '../../src/policy/service.ts';
import { NOTHING_DETECTED } from '../../src/protect/service.ts';
import { SqliteRecordStore } from '../../src/state/records-sqlite.ts';
import { auditFixture } from '../audit/helpers.ts';
import { testCallContext } from '../helpers.ts';
import { FROZEN_NOW, FS_TOOLS, policyConfig } from '../policy/fixtures.ts';
import { breakGlassWith } from './fixtures.ts';

/** Every call errors in Cedar: an integer overflow no validator sees. */
const BROKEN = `@id("permit-all") permit(principal, action, resource);
@id("broken") forbid(principal, action, resource) when { 9223372036854775807 + 1 > 0 };`;
const WRITE_NEEDS_APPROVAL = `@id("write-needs-approval") @obligation("approval")
permit(principal, action, resource) when { !context.approval.granted };`;
const WRITE_NEEDS_MASKING = `@id("masked") @obligation("approval, mask")
permit(principal, action, resource);`;

const carol: Principal = {
  id: 'p_carol',
  authMethod: 'gateway-token',
  user: 'carol',
  scopes: [],
  claims: {},
};

function policyWith(text: string): PolicyService {
  const dir = mkdtempSync(join(tmpdir(), 'pc-bg-policy-'));
  writeFileSync(join(dir, 'p.cedar'), text);
  const svc = new PolicyService(policyConfig({ files: ['p.cedar'], trustAnnotations: ['fs'] }), dir, {
    onSetChange: () => {},
    log: silentLogger,
    now: () => FROZEN_NOW,
  });
  svc.catalog.updateTools('fs', FS_TOOLS);
  return svc;
}

/** A validated `tools/call` of `tool`, routed to the fs upstream. */
function callTo(svc: PolicyService, tool: string, principal = carol): CallContext {
  const args = tool === 'fs__write_file' ? { path: '/a', content: 'x' } : { path: '/a' };
  const ctx = testCallContext({
    principal,
    request: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: tool, arguments: args } },
  });
  ctx.route = { kind: 'upstream', upstream: 'fs', method: 'tools/call', params: {} };
  ctx.callInput = {
    target: { kind: 'tool', tool: svc.catalog.tool(tool)! },
    input: args,
    args,
    detected: NOTHING_DETECTED,
    reason: 'incident 42',
    reasonSource: 'declared',
  };
  return ctx;
}

async function openWindow(scope: string) {
  const bg = breakGlassWith(new SqliteRecordStore(':memory:'), { now: () => FROZEN_NOW });
  const w = await bg.guard.windows.request({
    scope,
    ttlMs: 60_000,
    reason: 'engine down',
    by: 'operator:alice',
  });
  for (const name of ['bob', 'dave'])
    await bg.guard.windows.approve(w.id, {
      approver: `operator:${name}`,
      channel: 'cli',
      comment: '',
      at: FROZEN_NOW,
    });
  return { ...bg, id: w.id };
}

describe('the authorize stage with an open break-glass window', () => {
  it('allows a call in scope that the policy engine fails on, marked with the window and the refusal it overrode', async () => {
    const svc = policyWith(BROKEN);
    const bg = await openWindow('tool:fs__write_file');
    const stage = authorizeStage(svc, new Set(['approval']), bg.guard);
    // Several times over: from a caller's third call on, the decision takes another path (residuals).
    for (let i = 0; i < 4; i++) {
      const ctx = callTo(svc, 'fs__write_file');
      await stage.run(ctx);
      assert.equal(ctx.breakGlassId, bg.id);
      assert.deepEqual(ctx.decision, {
        effect: 'allow',
        determiningPolicies: ['builtin:break-glass'],
        policySetHash: svc.live.source.hash,
        obligations: [],
        errors: ctx.decision?.errors,
        overridden: { code: 'ERR_POLICY_ENGINE', determiningPolicies: ['permit-all'], obligations: [] },
      });
      assert.match(ctx.decision?.errors.join() ?? '', /overflow/);
    }
  });

  it('still refuses, with the engine error, a call the window does not cover', async () => {
    const svc = policyWith(BROKEN);
    const bg = await openWindow('tool:fs__write_file');
    const stage = authorizeStage(svc, new Set(['approval']), bg.guard);
    const ctx = callTo(svc, 'fs__read_text_file');
    await assert.rejects(async () => stage.run(ctx), { code: 'ERR_POLICY_ENGINE' });
    assert.equal(ctx.breakGlassId, undefined);
    const stranger = callTo(svc, 'fs__write_file', { ...carol, authMethod: 'none', id: 'anonymous' });
    await assert.rejects(async () => stage.run(stranger), { code: 'ERR_POLICY_ENGINE' });
  });

  it('allows a call in scope that policy denies', async () => {
    const svc = policyWith(
      '@id("all") permit(principal, action, resource);\n@id("no-incidents") forbid(principal, action, resource) when { context.reason like "incident*" };',
    );
    const bg = await openWindow('upstream:fs');
    const ctx = callTo(svc, 'fs__write_file');
    await authorizeStage(svc, new Set(['approval']), bg.guard).run(ctx);
    assert.equal(ctx.breakGlassId, bg.id);
    assert.deepEqual(ctx.decision?.overridden, {
      code: 'ERR_POLICY_DENIED',
      determiningPolicies: ['no-incidents'],
      obligations: [],
    });
  });

  it('takes the approval obligation off a call in scope, so it is not held', async () => {
    const svc = policyWith(WRITE_NEEDS_APPROVAL);
    const bg = await openWindow('tool:fs__write_*');
    const ctx = callTo(svc, 'fs__write_file');
    await authorizeStage(svc, new Set(['approval']), bg.guard).run(ctx);
    assert.deepEqual(ctx.decision?.obligations, []);
    assert.deepEqual(ctx.decision?.overridden, {
      code: 'ERR_APPROVAL_REQUIRED',
      determiningPolicies: ['write-needs-approval'],
      obligations: ['approval'],
    });
    const out = callTo(svc, 'fs__read_text_file');
    await authorizeStage(svc, new Set(['approval']), bg.guard).run(out);
    assert.deepEqual(out.decision?.obligations, ['approval'], 'out of scope: held as ever');
    assert.equal(out.breakGlassId, undefined);
  });

  it('overrides no obligation but approval: an allow that also needs masking no stage offers is still refused', async () => {
    const svc = policyWith(WRITE_NEEDS_MASKING);
    const bg = await openWindow('tool:fs__write_file');
    const ctx = callTo(svc, 'fs__write_file');
    await assert.rejects(async () => authorizeStage(svc, new Set(['approval']), bg.guard).run(ctx), {
      code: 'ERR_APPROVAL_REQUIRED',
      message: /approval, mask/,
    });
    assert.equal(ctx.breakGlassId, undefined);
  });
});

describe('a call let through by break-glass, at the audit', () => {
  it('is recorded with the window id and the refusal it overrode before it goes on, and then alerts its use', async () => {
    const svc = policyWith(BROKEN);
    const bg = await openWindow('tool:fs__write_file');
    const f = auditFixture('sqlite');
    const audit = new AuditService(() => openAudit(f.setup, silentLogger));
    const ctx = callTo(svc, 'fs__write_file');
    for (const stage of [
      authorizeStage(svc, new Set(['approval']), bg.guard),
      auditDecisionStage(audit),
      breakGlassStage(bg.guard),
    ])
      await stage.run(ctx);
    await audit.close();
    const store = new SqliteAuditStore(f.setup.config.path);
    const [entry] = await store.entries(0, 1);
    await store.close();
    const record = JSON.parse(entry!.leaf.toString()) as Record<string, unknown>;
    assert.equal(record.breakGlassId, bg.id);
    assert.deepEqual(record.decision, {
      effect: 'allow',
      determiningPolicies: ['builtin:break-glass'],
      policySetHash: svc.live.source.hash,
      obligations: [],
      overridden: { code: 'ERR_POLICY_ENGINE', determiningPolicies: ['permit-all'], obligations: [] },
    });
    assert.deepEqual(
      bg.announced.filter((e) => e.type === 'breakglass.used').map((e) => e.data.callId),
      [ctx.callId],
    );
  });

  it('is denied with ERR_AUDIT_UNAVAILABLE when its decision record cannot be made durable, and raises no use', async () => {
    const svc = policyWith(BROKEN);
    const bg = await openWindow('tool:fs__write_file');
    const audit = new AuditService(async () => {
      throw new Error('disk on fire');
    });
    const ctx = callTo(svc, 'fs__write_file');
    await authorizeStage(svc, new Set(['approval']), bg.guard).run(ctx);
    assert.equal(ctx.breakGlassId, bg.id);
    await assert.rejects(async () => auditDecisionStage(audit).run(ctx), { code: 'ERR_AUDIT_UNAVAILABLE' });
    assert.equal(
      bg.announced.some((e) => e.type === 'breakglass.used'),
      false,
    );
  });
});
