import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Principal } from '../../src/identity/principal.ts';
import type { CallContext } from '../../src/pipeline/context.ts';
import { createPipeline } from '../../src/pipeline/runner.ts';
import { filterListStage } from '../../src/pipeline/stages/filter-list.ts';
import { paramHeadersStage } from '../../src/pipeline/stages/param-headers.ts';
import { PolicyService } from '../../src/policy/service.ts';
import { testCallContext } from '../helpers.ts';
import { alice, FROZEN_NOW, FS_TOOLS, log, policyConfig } from '../policy/fixtures.ts';

function policyWith(text: string): PolicyService {
  const dir = mkdtempSync(join(tmpdir(), 'pc-stages-'));
  writeFileSync(join(dir, 'p.cedar'), text);
  const svc = new PolicyService(policyConfig({ files: ['p.cedar'], trustAnnotations: ['fs'] }), dir, {
    onSetChange: () => {},
    log,
    now: () => FROZEN_NOW,
  });
  svc.learnTools(FS_TOOLS.map((item) => ({ item, upstream: 'fs' })));
  return svc;
}

const listCall = (principal: Principal): CallContext => {
  const ctx = testCallContext({
    principal,
    request: { jsonrpc: '2.0', id: 7, method: 'tools/list', params: {} },
  });
  ctx.listed = { method: 'tools/list', items: FS_TOOLS.map((item) => ({ item, upstream: 'fs' })) };
  return ctx;
};

/** A list as authorize leaves it: with the set it was authorized by. */
const authorizedList = (principal: Principal, policy: PolicyService): CallContext => {
  const ctx = listCall(principal);
  ctx.listPolicy = policy.live;
  return ctx;
};

const names = (ctx: CallContext): unknown =>
  (ctx.response?.result?.tools as { name: string }[] | undefined)?.map((t) => t.name);

describe('the filter-list stage', () => {
  it('answers a list with only the tools policy lets the caller use', async () => {
    const policy = policyWith(
      '@id("r") permit(principal, action == Action::"tools/call:fs__read_text_file", resource);',
    );
    const stage = filterListStage(policy);
    const ctx = authorizedList(alice, policy);
    await stage.run(ctx);
    assert.equal(ctx.response?.id, 7);
    assert.deepEqual(names(ctx), ['fs__read_text_file']);
  });

  it("leaves out what the caller's token does not name, whatever policy allows", async () => {
    const policy = policyWith('@id("p") permit(principal, action, resource);');
    const stage = filterListStage(policy);
    const ctx = authorizedList(
      { ...alice, allowed: { tools: ['fs__write_file'], prompts: [], resources: [] } },
      policy,
    );
    await stage.run(ctx);
    assert.deepEqual(names(ctx), ['fs__write_file']);
  });

  it('filters by the policy set the list was authorized by, when a reload came in between', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-stages-'));
    const file = join(dir, 'p.cedar');
    writeFileSync(
      file,
      '@id("r") permit(principal, action == Action::"tools/call:fs__read_text_file", resource);',
    );
    const svc = new PolicyService(policyConfig({ files: ['p.cedar'], trustAnnotations: ['fs'] }), dir, {
      onSetChange: () => {},
      log,
      now: () => FROZEN_NOW,
    });
    svc.learnTools(FS_TOOLS.map((item) => ({ item, upstream: 'fs' })));
    const ctx = listCall(alice);
    ctx.listPolicy = svc.live;
    writeFileSync(
      file,
      '@id("w") permit(principal, action == Action::"tools/call:fs__write_file", resource);',
    );
    assert.equal(svc.reload().ok, true);
    await filterListStage(svc).run(ctx);
    assert.deepEqual(names(ctx), ['fs__read_text_file'], 'the set its decision record names');
    const later = authorizedList(alice, svc);
    await filterListStage(svc).run(later);
    assert.deepEqual(names(later), ['fs__write_file'], 'a list authorized after the reload');
  });

  it('fails a list closed that no policy set authorized: nothing listed goes out', async () => {
    const ctx = listCall(alice);
    await createPipeline(
      [filterListStage(policyWith('@id("p") permit(principal, action, resource);'))],
      [],
      log,
    ).run(ctx);
    assert.equal(ctx.error?.code, 'ERR_INTERNAL');
    assert.equal(ctx.response?.result, undefined);
  });

  it('fails a list closed when no stage filters it: the call ends with ERR_INTERNAL, nothing listed goes out', async () => {
    const forwardOnly = {
      name: 'forward',
      run(ctx: CallContext) {
        ctx.listed = { method: 'tools/list', items: FS_TOOLS.map((item) => ({ item, upstream: 'fs' })) };
      },
    };
    const ctx = listCall(alice);
    await createPipeline([forwardOnly], [], log).run(ctx);
    assert.equal(ctx.error?.code, 'ERR_INTERNAL');
    assert.equal(ctx.response?.result, undefined);
  });
});

const SCHEMA = {
  type: 'object',
  properties: { region: { type: 'string', 'x-mcp-header': 'Region' }, note: { type: 'string' } },
};

function toolCall(headers: Record<string, string> | undefined, args: Record<string, unknown>): CallContext {
  return testCallContext({
    era: 'modern',
    request: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'geo__find', arguments: args } },
    ...(headers ? { requestHeaders: headers } : {}),
  });
}

describe('the param-headers stage', () => {
  const stage = paramHeadersStage({ toolSchema: async () => SCHEMA });

  it('refuses a call whose Mcp-Param header disagrees with its arguments with ERR_HEADER_MISMATCH', async () => {
    const ctx = toolCall({ 'mcp-param-region': 'us' }, { region: 'eu' });
    await assert.rejects(async () => stage.run(ctx), { code: 'ERR_HEADER_MISMATCH', httpStatus: 400 });
    assert.equal(ctx.forwardHeaders, undefined);
  });

  it('hands forward only the headers the tool declares, with the values the body holds', async () => {
    const ctx = toolCall({ 'mcp-param-region': 'eu', 'mcp-param-other': 'x' }, { region: 'eu', note: 'n' });
    await stage.run(ctx);
    assert.deepEqual(ctx.forwardHeaders, { 'mcp-param-region': 'eu' });
  });

  it('has nothing to check for a call that came without HTTP headers (stdio, legacy)', async () => {
    const asked: string[] = [];
    const quiet = paramHeadersStage({
      toolSchema: async (_s, name) => {
        asked.push(name);
        return SCHEMA;
      },
    });
    const ctx = toolCall(undefined, { region: 'eu' });
    await quiet.run(ctx);
    assert.equal(ctx.forwardHeaders, undefined);
    assert.deepEqual(asked, []);
  });
});
