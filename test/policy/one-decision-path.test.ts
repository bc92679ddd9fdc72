import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import type { Principal } from '../../src/identity/principal.ts';
import type { JsonObject } from '../../src/jsonrpc.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { authorizeStage } from '../../src/pipeline/stages/authorize.ts';
import { validateStage } from '../../src/pipeline/stages/validate.ts';
import { policySchema } from '../../src/policy/config.ts';
import { MAX_TOOLS_PER_PRINCIPAL } from '../../src/policy/facts/session-facts.ts';
import { Catalog } from '../../src/policy/model/catalog.ts';
import { PolicyService } from '../../src/policy/service.ts';
import { evaluateCase, type PolicyCase } from '../../src/policy/testing/cases.ts';
import { noBreakGlass } from '../breakglass/fixtures.ts';
import { runCli, testCallContext } from '../helpers.ts';
import { FROZEN_NOW, FS_TOOLS } from './fixtures.ts';

const POLICY = `
@id("reads") permit(principal, action in Action::"tools/call", resource) when { resource.tier == "read" };
@id("local-writes") permit(principal, action == Action::"tools/call:fs__write_file", resource)
  when { context.network.transport == "stdio" };
@id("no-exfil") forbid(principal, action == Action::"tools/call:fs__send_report", resource)
  when { context.session.sensitiveRead };
@id("no-outsiders") forbid(principal, action == Action::"tools/call:fs__send_report", resource)
  when { context.input.to like "*@outside.example" };
`;
/** Two names that collide once normalised: the catalog refuses both. */
const TOOLS = [
  ...FS_TOOLS,
  { name: 'fs__dup-name', inputSchema: { type: 'object' }, annotations: { readOnlyHint: true } },
  { name: 'fs__dup_name', inputSchema: { type: 'object' }, annotations: { readOnlyHint: true } },
];
const SETTINGS = { trustAnnotations: ['fs'], limits: { maxArgumentBytes: 512, maxDepth: 4 } };
const alice = { id: 'jwt:alice', user: 'alice', authMethod: 'jwt' as const };
const decoys = Array.from({ length: MAX_TOOLS_PER_PRINCIPAL }, (_, i) => `decoy_${i}`);

type Case = PolicyCase & { expect: NonNullable<PolicyCase['expect']>; code?: string };
const CASES: Case[] = [
  { name: 'a read is allowed', tool: 'fs__read_text_file', arguments: { path: '/a' }, expect: 'allow' },
  {
    name: 'a local caller is a stdio one, as the gateway sees it',
    tool: 'fs__write_file',
    arguments: { path: '/a', content: 'x' },
    expect: 'allow',
    determiningPolicies: ['local-writes'],
  },
  {
    name: 'arguments larger than the limit are refused before policy',
    tool: 'fs__read_text_file',
    arguments: { path: 'x'.repeat(600) },
    expect: 'invalid-arguments',
    code: 'ERR_INVALID_ARGUMENTS',
  },
  {
    name: 'arguments nested deeper than the limit are refused before policy',
    tool: 'fs__read_text_file',
    arguments: { path: '/a', extra: { a: { b: { c: { d: {} } } } } },
    expect: 'invalid-arguments',
    code: 'ERR_INVALID_ARGUMENTS',
  },
  {
    name: 'arguments that do not match the schema are refused',
    tool: 'fs__read_text_file',
    arguments: { path: 7 } as unknown as JsonObject,
    expect: 'invalid-arguments',
    code: 'ERR_INVALID_ARGUMENTS',
  },
  {
    name: 'a refused tool answers as an unknown one',
    tool: 'fs__dup_name',
    arguments: {},
    expect: 'unknown-tool',
    code: 'ERR_UNKNOWN_TARGET',
  },
  {
    name: 'a sensitive read in the history denies a report, which then answers as unknown',
    tool: 'fs__send_report',
    arguments: { to: 'x@example.com' },
    session: { sensitiveRead: true },
    expect: 'deny',
    determiningPolicies: ['no-exfil'],
    code: 'ERR_UNKNOWN_TARGET',
  },
  {
    name: 'a report to an outsider is denied by policy',
    tool: 'fs__send_report',
    arguments: { to: 'x@outside.example' },
    expect: 'deny',
    determiningPolicies: ['no-outsiders'],
    code: 'ERR_POLICY_DENIED',
  },
  {
    name: 'a tool new to a caller whose tool history is full is denied',
    tool: 'fs__read_text_file',
    arguments: { path: '/a' },
    session: { toolsUsed: decoys },
    expect: 'deny',
    determiningPolicies: ['builtin:session-history-full'],
    code: 'ERR_SESSION_HISTORY_FULL',
  },
  {
    name: 'a tool already in a full tool history is still allowed',
    tool: 'fs__read_text_file',
    arguments: { path: '/a' },
    session: { toolsUsed: [...decoys.slice(1), 'fs__read_text_file'] },
    expect: 'allow',
  },
].map((c) => ({ principal: alice, ...c }) as Case);

function workspace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pc-one-path-'));
  writeFileSync(join(dir, 'p.cedar'), POLICY);
  // The CLI has no history of its own: each case states what the caller did lately.
  const cases = CASES.map(({ code: _, ...c }) => c);
  writeFileSync(
    join(dir, 'cases.yaml'),
    stringify({ policies: ['p.cedar'], settings: SETTINGS, tools: TOOLS, cases }),
  );
  return dir;
}

function gatewayPolicy(dir: string): PolicyService {
  const cfg = policySchema.parse({ ...SETTINGS, files: ['p.cedar'] });
  const catalog = new Catalog(cfg);
  catalog.updateTools('fs', TOOLS);
  return new PolicyService(cfg, dir, {
    onSetChange: () => {},
    log: silentLogger,
    catalog,
    now: () => FROZEN_NOW,
  });
}

/** The case's history, lived through the gateway: the calls it names were made and allowed. */
function replayHistory(svc: PolicyService, principal: Principal, c: Case): void {
  for (const tool of c.session?.toolsUsed ?? [])
    svc.facts.record(principal.id, tool, FROZEN_NOW - 1000, { sensitive: false, tool: true });
  if (c.session?.sensitiveRead)
    svc.facts.record(principal.id, 'file:///secret', FROZEN_NOW - 1000, { sensitive: true, tool: false });
}

/** The case through the real validate and authorize stages, as a stdio `tools/call`. */
async function throughGateway(dir: string, c: Case) {
  const svc = gatewayPolicy(dir);
  const principal: Principal = { scopes: [], claims: {}, ...alice };
  replayHistory(svc, principal, c);
  const params = { name: c.tool, arguments: c.arguments ?? {} };
  const ctx = testCallContext({
    principal,
    request: { jsonrpc: '2.0', id: 1, method: 'tools/call', params },
    route: {
      kind: 'upstream',
      upstream: 'fs',
      method: 'tools/call',
      params,
      target: { exposed: c.tool, original: c.tool.slice(4) },
    },
  });
  const noUpstream = {} as never;
  try {
    for (const stage of [validateStage(noUpstream, svc), authorizeStage(svc, new Set(), noBreakGlass())])
      await stage.run(ctx);
    return { code: undefined, decision: ctx.decision };
  } catch (err) {
    return { code: (err as { code?: string }).code, decision: ctx.decision };
  }
}

describe('one decision path for the gateway and portcullis policy test', () => {
  it('decides every case as the gateway decides it, size, depth, refused-tool and history cases included', async () => {
    const dir = workspace();
    const cli = await runCli(['policy', 'test', join(dir, 'cases.yaml')]);
    assert.equal(cli.code, 0, cli.stdout + cli.stderr);
    assert.match(cli.stdout, new RegExp(`${CASES.length} passed, 0 failed`));
    for (const c of CASES) {
      const gateway = await throughGateway(dir, c);
      assert.equal(gateway.code, c.code, `${c.name}: the gateway's refusal`);
      const local = evaluateCase(gatewayPolicy(dir), c);
      if (local.kind !== 'decision') {
        assert.equal(local.kind, c.expect, c.name);
        assert.equal(gateway.decision, undefined, `${c.name}: refused before policy`);
        continue;
      }
      assert.equal(gateway.decision?.effect, local.decision.effect, c.name);
      assert.deepEqual(gateway.decision?.determiningPolicies, local.decision.determiningPolicies, c.name);
      assert.equal(gateway.decision?.policySetHash, local.decision.policySetHash, c.name);
    }
  });
});
