import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/observability/log.ts';
import type { CallContext } from '../../src/pipeline/context.ts';
import { maskStage } from '../../src/pipeline/stages/mask.ts';
import { protectSchema } from '../../src/protect/config.ts';
import { DataProtection } from '../../src/protect/service.ts';
import { testCallContext } from '../helpers.ts';

const AWS_KEY = 'AKIAQYLPMN5HFIQR7XYA';

function stage(config: unknown = {}, protection = new DataProtection(protectSchema.parse(config))) {
  const marked: string[] = [];
  const run = maskStage({ protection, markSensitive: (id) => marked.push(id), log: silentLogger });
  return { run: (ctx: CallContext) => run.run(ctx), marked };
}

function answered(text: string, opts: { obligations?: string[]; tier?: string } = {}): CallContext {
  const ctx = testCallContext();
  ctx.route = { kind: 'upstream', upstream: 'hr', method: 'tools/call', params: {} } as never;
  ctx.callInput = {
    target: { kind: 'tool', tool: { name: 'hr__read', tier: opts.tier ?? 'read' } },
  } as never;
  ctx.decision = {
    effect: 'allow',
    determiningPolicies: ['p'],
    policySetHash: '',
    obligations: opts.obligations ?? [],
    errors: [],
  };
  ctx.response = { jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text }] } };
  return ctx;
}

const textOf = (ctx: CallContext) =>
  (ctx.response?.result?.content as { text: string }[] | undefined)?.[0]?.text;

describe('the mask stage', () => {
  it('masks a result whose decision carries the mask obligation, and marks its reader', async () => {
    const s = stage();
    const ctx = answered(`key ${AWS_KEY}`, { obligations: ['mask'] });
    await s.run(ctx);
    assert.equal(textOf(ctx), 'key [REDACTED:aws-access-token]');
    assert.deepEqual(ctx.masked, { mode: 'redact', outcome: 'masked', summary: { 'aws-access-token': 1 } });
    assert.deepEqual(s.marked, [ctx.principal.id]);
  });

  it('masks by config where no obligation asks, the tool before the upstream before the tier', async () => {
    const s = stage({
      mask: { tools: { hr__read: 'partial' }, upstreams: { hr: 'block' }, tiers: { read: 'block' } },
    });
    const ctx = answered(`key ${AWS_KEY}`);
    await s.run(ctx);
    assert.equal(textOf(ctx), 'key [REDACTED:aws-access-token:…7XYA]');
    const byTier = stage({ mask: { tiers: { 'read-sensitive': 'block' } } });
    const blocked = answered(`key ${AWS_KEY}`, { tier: 'read-sensitive' });
    await byTier.run(blocked);
    assert.equal(blocked.error?.code, 'ERR_RESULT_WITHHELD');
    assert.equal(blocked.response?.result, undefined);
  });

  it('relays a result nobody asked to mask as it is, and marks its reader only when it holds something', async () => {
    const s = stage();
    const leaky = answered(`key ${AWS_KEY}`);
    await s.run(leaky);
    assert.equal(textOf(leaky), `key ${AWS_KEY}`);
    assert.deepEqual(leaky.masked, { mode: null, outcome: 'unmasked', summary: { 'aws-access-token': 1 } });
    const clean = answered('sunny');
    await s.run(clean);
    assert.deepEqual(s.marked, [leaky.principal.id]);
  });

  it('withholds the result when checking it fails, rather than relay it unchecked', async () => {
    const broken = new DataProtection(protectSchema.parse({}));
    broken.modeFor = () => {
      throw new Error('boom');
    };
    const s = stage({}, broken);
    const ctx = answered(`key ${AWS_KEY}`, { obligations: ['mask'] });
    await s.run(ctx);
    assert.equal(ctx.error?.code, 'ERR_RESULT_WITHHELD');
    assert.ok(!JSON.stringify(ctx.response).includes(AWS_KEY));
  });

  it('leaves an answer the gateway itself gave (an error of its own) alone', async () => {
    const s = stage();
    const ctx = answered(`key ${AWS_KEY}`, { obligations: ['mask'] });
    ctx.error = { code: 'ERR_POLICY_DENIED' } as never;
    await s.run(ctx);
    assert.equal(ctx.masked, undefined);
    assert.deepEqual(s.marked, []);
  });
});
