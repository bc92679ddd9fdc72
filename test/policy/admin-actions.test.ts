import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type AdminQuery, adminRefusal, decideAdminAction } from '../../src/policy/admin.ts';
import { ADMIN_ACTION, type AdminAction } from '../../src/policy/model/cedar-schema.ts';
import { PolicyService } from '../../src/policy/service.ts';
import { ROOT } from '../helpers.ts';
import { alice, catalogWith, FROZEN_NOW, facts, log, policyConfig } from './fixtures.ts';

const held = { id: 'apr_1', tool: 'fs__write_file', principal: 'jwt:carol', required: 1 };

function serviceOver(files: string[]): PolicyService {
  const cfg = policyConfig({ files, trustAnnotations: ['fs'] });
  return new PolicyService(cfg, ROOT, { onSetChange: () => {}, log, catalog: catalogWith(cfg) });
}

function serviceWith(text: string): PolicyService {
  const file = join(mkdtempSync(join(tmpdir(), 'pc-admin-policy-')), 'admin.cedar');
  writeFileSync(file, text);
  return serviceOver([file]);
}

const query = (action: AdminAction, over: Partial<AdminQuery> = {}): AdminQuery => ({
  caller: { kind: 'principal', principal: alice },
  approver: true,
  action,
  ...(action === ADMIN_ACTION.list ? {} : { approval: held }),
  network: { address: '10.0.0.9', transport: 'http' },
  now: FROZEN_NOW,
  ...over,
});

const codeOf = (svc: PolicyService, q: AdminQuery) => adminRefusal(decideAdminAction(svc, q))?.code;

describe('admin actions on approvals, decided by the policy set', () => {
  const defaults = serviceOver([join(ROOT, 'policies/default.cedar')]);

  it('default.cedar lets an approver list, show, approve and deny', () => {
    for (const action of Object.values(ADMIN_ACTION)) {
      const d = decideAdminAction(defaults, query(action));
      assert.equal(d.effect, 'allow', action);
      assert.deepEqual(d.determiningPolicies, ['approvers-decide-approvals']);
      assert.equal(adminRefusal(d), undefined);
    }
  });

  it('default.cedar refuses every admin action to a caller outside the approver role', () => {
    for (const action of Object.values(ADMIN_ACTION))
      assert.equal(codeOf(defaults, query(action, { approver: false })), 'ERR_POLICY_DENIED', action);
  });

  it('a policy set without a permit for them refuses the admin API (deny by default)', () => {
    const reads = serviceOver([join(ROOT, 'policies/demo.cedar')]);
    for (const action of Object.values(ADMIN_ACTION))
      assert.equal(codeOf(reads, query(action)), 'ERR_POLICY_DENIED', action);
  });

  it('never gives the approver role to a tool call, whoever makes it', () => {
    const svc = serviceWith('@id("approvers") permit(principal in Role::"approver", action, resource);');
    const catalog = svc.catalog;
    assert.equal(svc.decide(facts(catalog, 'fs__read_text_file')).effect, 'deny');
    assert.equal(codeOf(svc, query(ADMIN_ACTION.approve)), undefined);
  });

  it('lets policies read the approval: its tool, the held caller and how many approvers it needs', () => {
    const svc = serviceWith(`
      @id("approvers") permit(principal in Role::"approver", action, resource is Approval)
      when { resource.tool like "fs__*" && resource.required < 3 && context.reason != "" };
      @id("not-for-carol") forbid(principal, action == Action::"approvals/approve", resource is Approval)
      when { resource.principal == "jwt:carol" && principal.user == "alice" };
    `);
    assert.equal(codeOf(svc, query(ADMIN_ACTION.deny, { comment: 'no' })), undefined);
    assert.equal(codeOf(svc, query(ADMIN_ACTION.deny)), 'ERR_POLICY_DENIED');
    assert.equal(codeOf(svc, query(ADMIN_ACTION.approve, { comment: 'ok' })), 'ERR_POLICY_DENIED');
    const other = { ...held, principal: 'jwt:dave' };
    assert.equal(codeOf(svc, query(ADMIN_ACTION.approve, { comment: 'ok', approval: other })), undefined);
    assert.equal(
      codeOf(svc, query(ADMIN_ACTION.show, { comment: 'x', approval: { ...held, tool: 'mail__send' } })),
      'ERR_POLICY_DENIED',
    );
  });

  it('decides a callback approver as a caller named by its source', () => {
    const svc = serviceWith(`
      @id("chat-approvers") permit(principal in Role::"approver", action == Action::"approvals/approve", resource)
      when { principal.authMethod == "webhook" && principal.issuer == "webhook:chat" && principal.id == "webhook:chat:U42" };
    `);
    const caller = { kind: 'callback', source: 'chat', approver: 'webhook:chat:U42' } as const;
    assert.equal(codeOf(svc, query(ADMIN_ACTION.approve, { caller })), undefined);
    assert.equal(codeOf(svc, query(ADMIN_ACTION.approve, { caller, approver: false })), 'ERR_POLICY_DENIED');
    assert.equal(codeOf(svc, query(ADMIN_ACTION.deny, { caller })), 'ERR_POLICY_DENIED');
  });

  it('refuses an admin allow that carries an obligation, since nothing there honours one', () => {
    const svc = serviceWith(
      '@id("masked") @obligation("mask") permit(principal in Role::"approver", action == Action::"approvals/show", resource);',
    );
    assert.equal(codeOf(svc, query(ADMIN_ACTION.show)), 'ERR_OBLIGATION_UNMET');
  });

  it('keeps time and network conditions that apply to every action valid and in force', () => {
    const svc = serviceWith(`
      @id("approvers") permit(principal in Role::"approver", action, resource);
      @id("office") forbid(principal, action, resource) unless { context.time.hour >= 8 && context.time.hour < 18 };
      @id("lan") forbid(principal, action, resource) unless { context.network.address.isInRange(ip("10.0.0.0/8")) };
    `);
    assert.equal(codeOf(svc, query(ADMIN_ACTION.list)), undefined);
    assert.equal(
      codeOf(svc, query(ADMIN_ACTION.list, { now: FROZEN_NOW + 10 * 3600_000 })),
      'ERR_POLICY_DENIED',
    );
    const away = { address: '192.0.2.1', transport: 'http' };
    assert.equal(codeOf(svc, query(ADMIN_ACTION.list, { network: away })), 'ERR_POLICY_DENIED');
  });
});
