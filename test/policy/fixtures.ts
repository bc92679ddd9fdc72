import type { Principal } from '../../src/identity/principal.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { type PolicyConfig, policySchema } from '../../src/policy/config.ts';
import { cedar } from '../../src/policy/engine/cedar.ts';
import { PolicyEngine } from '../../src/policy/engine/engine.ts';
import { parsePolicyTexts } from '../../src/policy/engine/policy-set.ts';
import type { CallFacts, CedarRequest } from '../../src/policy/facts/request.ts';
import { Catalog } from '../../src/policy/model/catalog.ts';
import { NOTHING_DETECTED } from '../../src/protect/service.ts';

export const FROZEN_NOW = Date.UTC(2026, 10, 24, 10, 0, 0); // a Tuesday, 10:00 UTC

export const alice: Principal = {
  id: 'jwt:alice',
  authMethod: 'jwt',
  user: 'alice',
  workload: 'agent-1',
  issuer: 'https://idp.example',
  scopes: ['tools'],
  claims: { groups: ['engineers'], dept: 'platform' },
};

export const policyConfig = (extra: Record<string, unknown> = {}): PolicyConfig => policySchema.parse(extra);

export const FS_TOOLS = [
  {
    name: 'fs__read_text_file',
    inputSchema: {
      type: 'object',
      properties: { path: { type: 'string' }, head: { type: 'integer' } },
      required: ['path'],
    },
    annotations: { readOnlyHint: true, openWorldHint: false },
  },
  {
    name: 'fs__write_file',
    inputSchema: {
      type: 'object',
      properties: { path: { type: 'string' }, content: { type: 'string' } },
      required: ['path', 'content'],
    },
    annotations: { readOnlyHint: false, destructiveHint: true, openWorldHint: false },
  },
  {
    name: 'fs__send_report',
    inputSchema: {
      type: 'object',
      properties: {
        to: { type: 'string' },
        ratio: { type: 'number' },
        tags: { type: 'array', items: { type: 'string' } },
      },
      required: ['to'],
    },
    annotations: { readOnlyHint: true, openWorldHint: false },
  },
];

export function catalogWith(cfg: PolicyConfig = policyConfig({ trustAnnotations: ['fs'] })): Catalog {
  const catalog = new Catalog(cfg);
  catalog.updateTools('fs', FS_TOOLS);
  return catalog;
}

export function engineFor(text: string, catalog = catalogWith()): PolicyEngine {
  return new PolicyEngine(parsePolicyTexts([{ file: 'test.cedar', text }]), catalog);
}

export function facts(catalog: Catalog, tool: string, over: Partial<CallFacts> = {}): CallFacts {
  return {
    principal: alice,
    method: 'tools/call',
    target: { kind: 'tool', tool: catalog.tool(tool)! },
    input: {},
    reason: 'ticket 42',
    now: FROZEN_NOW,
    utcOffsetMinutes: 0,
    network: { address: '10.1.2.3', transport: 'http' },
    session: { callsLastMinute: 0, toolsUsed: [], sensitiveRead: false, tainted: false, toolsFull: false },
    approval: { granted: false, breakGlass: false },
    request: { signed: false },
    detected: NOTHING_DETECTED,
    ...over,
  };
}

export const log = silentLogger;

/** Cedar's answer over the WHOLE set of `engine` on the UNTRIMMED request: what slicing must agree with. */
export function wholeSetAnswer(engine: PolicyEngine, req: CedarRequest) {
  return cedar.isAuthorized({
    principal: req.principal,
    action: req.action,
    resource: req.resource,
    context: req.context as never,
    entities: req.entities,
    policies: { staticPolicies: Object.fromEntries(engine.source.policies.map((p) => [p.id, p.text])) },
  });
}
