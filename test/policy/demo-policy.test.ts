import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Catalog } from '../../src/policy/model/catalog.ts';
import { PolicyService } from '../../src/policy/service.ts';
import { evaluateCase } from '../../src/policy/testing/cases.ts';
import { ROOT } from '../helpers.ts';
import { FS_TOOLS, log, policyConfig } from './fixtures.ts';

describe('the demo policy set', () => {
  const cfg = policyConfig({
    files: [join(ROOT, 'policies/default.cedar'), join(ROOT, 'policies/demo.cedar')],
    trustAnnotations: ['fs'],
  });
  const catalog = new Catalog(cfg);
  catalog.updateTools('fs', FS_TOOLS);
  const svc = new PolicyService(cfg, ROOT, { onSetChange: () => {}, log, catalog });

  it('lets the demo caller use read tools without a reason', () => {
    const out = evaluateCase(svc, { tool: 'fs__read_text_file', arguments: { path: '/a' } });
    assert.equal(out.kind === 'decision' && out.decision.effect, 'allow');
  });

  it('still asks for an approval before a write, which is denied for now', () => {
    const out = evaluateCase(svc, {
      principal: { id: 'gw:demo', authMethod: 'gateway-token', reason: 'demo' },
      tool: 'fs__write_file',
      arguments: { path: '/a', content: 'x' },
    });
    assert.ok(out.kind === 'decision');
    assert.deepEqual(out.decision.obligations, ['approval']);
  });
});
