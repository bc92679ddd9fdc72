import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { silentLogger } from '../../src/observability/log.ts';
import { policySchema } from '../../src/policy/config.ts';
import { Catalog } from '../../src/policy/model/catalog.ts';
import { PolicyService } from '../../src/policy/service.ts';
import { evaluateCase } from '../../src/policy/testing/cases.ts';
import { runCli } from '../helpers.ts';
import { alice, FROZEN_NOW, FS_TOOLS } from '../policy/fixtures.ts';

const POLICY = `
@id("reads") permit(principal, action in Action::"tools/call", resource);
@id("writes-need-a-signed-request")
forbid(principal, action == Action::"tools/call:fs__write_file", resource)
unless { context.request.signed };
`;
const SETTINGS = { trustAnnotations: ['fs'] };
const WRITE = { tool: 'fs__write_file', arguments: { path: '/a', content: 'x' } };

function workspace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pc-signed-policy-'));
  writeFileSync(join(dir, 'p.cedar'), POLICY);
  return dir;
}

function service(dir: string): PolicyService {
  const cfg = policySchema.parse({ ...SETTINGS, files: ['p.cedar'] });
  const catalog = new Catalog(cfg);
  catalog.updateTools('fs', FS_TOOLS);
  return new PolicyService(cfg, dir, {
    onSetChange: () => {},
    log: silentLogger,
    catalog,
    now: () => FROZEN_NOW,
  });
}

describe('context.request.signed in policy', () => {
  it('allows a signed write and denies an unsigned one under a forbid … unless { context.request.signed }', () => {
    const svc = service(workspace());
    const signed = evaluateCase(svc, { ...WRITE, principal: alice, signed: true });
    const unsigned = evaluateCase(svc, { ...WRITE, principal: alice });
    assert.equal(signed.kind === 'decision' && signed.decision.effect, 'allow');
    assert.equal(unsigned.kind === 'decision' && unsigned.decision.effect, 'deny');
    assert.deepEqual(unsigned.kind === 'decision' && unsigned.decision.determiningPolicies, [
      'writes-need-a-signed-request',
    ]);
  });

  it("keeps the tool in the caller's list: whether a later call is signed is unknown when listing", () => {
    const svc = service(workspace());
    const items = FS_TOOLS.map((item) => ({ item: { ...item }, upstream: 'fs' }));
    const names = svc.filterList(svc.live, alice, 'tools/list', items).map((t) => t.name);
    assert.ok(names.includes('fs__write_file'));
  });

  it('decides the same in `portcullis policy test`, where a case says signed: true', async () => {
    const dir = workspace();
    const cases = [
      {
        name: 'signed write',
        ...WRITE,
        principal: { id: alice.id, user: 'alice' },
        signed: true,
        expect: 'allow',
      },
      { name: 'unsigned write', ...WRITE, principal: { id: alice.id, user: 'alice' }, expect: 'deny' },
    ];
    writeFileSync(
      join(dir, 'cases.yaml'),
      stringify({ policies: ['p.cedar'], settings: SETTINGS, tools: FS_TOOLS, cases }),
    );
    const r = await runCli(['policy', 'test', join(dir, 'cases.yaml')]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /2 passed, 0 failed/);
  });
});
