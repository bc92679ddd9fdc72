import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { policySchema } from '../../src/policy/config.ts';
import { cedar } from '../../src/policy/engine/cedar.ts';
import { PolicyEngine } from '../../src/policy/engine/engine.ts';
import { type PolicySource, parsePolicyTexts } from '../../src/policy/engine/policy-set.ts';
import { Catalog } from '../../src/policy/model/catalog.ts';
import { generateSchema } from '../../src/policy/model/cedar-schema.ts';

/** What one strict validation of the whole set against every tool's action finds (the reference). */
function everyAction(source: PolicySource, catalog: Catalog): string[] {
  const answer = cedar.validate({
    schema: generateSchema(catalog) as never,
    policies: { staticPolicies: Object.fromEntries(source.policies.map((p) => [p.id, p.text])) },
    validationSettings: { mode: 'strict' },
  });
  assert.equal(answer.type, 'success');
  if (answer.type !== 'success') return [];
  return answer.validationErrors.map((e) => e.policyId).sort();
}

const idsOf = (problems: readonly string[]): string[] =>
  problems.map((p) => /for policy `([^`]+)`/.exec(p)?.[1] ?? p).sort();

function catalogOf(tools: number): Catalog {
  const c = new Catalog(policySchema.parse({}));
  c.updateTools(
    'u',
    Array.from({ length: tools }, (_, i) => ({
      name: `u__t${i}`,
      inputSchema:
        i === 17
          ? { type: 'object', properties: { n: { type: 'number' } }, required: ['n'] }
          : { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
    })),
  );
  return c;
}

const POLICIES = `
@id("fine") permit(principal, action in Action::"tools/call", resource is Tool) when { resource.tier == "read" };
@id("fine-input") forbid(principal, action in Action::"tools/call", resource) when { context.input has path && context.input.path == "x" };
@id("input-every-tool") forbid(principal, action in Action::"tools/call", resource) when { context.input.path == "x" };
@id("input-one-tool") forbid(principal, action == Action::"tools/call:u__t17", resource) when { context.input.path == "x" };
@id("input-other-tool") forbid(principal, action == Action::"tools/call:u__t3", resource) when { context.input.path == "x" };
@id("wrong-type") forbid(principal, action, resource is Tool) when { resource.tier == 3 };
@id("no-such-attr") forbid(principal, action in Action::"tools/call", resource is Tool) when { resource.nope };
@id("unlisted-tool") forbid(principal, action == Action::"tools/call:u__missing", resource);
`;

describe('validating a set against a catalog of many tools', () => {
  it('finds exactly the policies one validation against every tool’s action refuses', () => {
    const catalog = catalogOf(60);
    const source = parsePolicyTexts([{ file: 'many.cedar', text: POLICIES }]);
    const problems = new PolicyEngine(source, catalog).validate();
    const expected = [...new Set(everyAction(source, catalog))].filter((id) => id !== 'unlisted-tool');
    assert.deepEqual([...new Set(idsOf(problems))], expected);
    assert.deepEqual(expected, ['input-every-tool', 'input-one-tool', 'no-such-attr', 'wrong-type']);
  });

  it('refuses a set again when a tool listed later breaks a policy that reads every tool’s input', () => {
    const catalog = new Catalog(policySchema.parse({}));
    const pathInput = { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] };
    catalog.updateTools(
      'u',
      Array.from({ length: 30 }, (_, i) => ({ name: `u__t${i}`, inputSchema: pathInput })),
    );
    const source = parsePolicyTexts([
      {
        file: 'later.cedar',
        text: '@id("input-every-tool") forbid(principal, action in Action::"tools/call", resource) when { context.input.path == "x" };',
      },
    ]);
    const engine = new PolicyEngine(source, catalog);
    assert.deepEqual(engine.validate(), []);
    catalog.updateTools('v', [{ name: 'v__late', inputSchema: { type: 'object', properties: {} } }]);
    assert.deepEqual([...new Set(idsOf(engine.validate()))], ['input-every-tool']);
  });
});
