import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalize } from '../../src/audit/jcs.ts';
import { decisionRecord, MAX_LEAF, outcomeRecord, sha256hex } from '../../src/audit/records.ts';
import { Denial } from '../../src/errors.ts';
import { ANONYMOUS } from '../../src/identity/principal.ts';
import { errorResponse, resultResponse } from '../../src/jsonrpc.ts';
import type { CallContext } from '../../src/pipeline/context.ts';
import { testCallContext } from '../helpers.ts';

function call(args: unknown): CallContext {
  return testCallContext({
    callId: 'call-1',
    startedAt: 1000,
    sessionKey: 'corr-1',
    request: {
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'fs__write', arguments: args as never },
    },
    principal: { ...ANONYMOUS, id: 'alice', user: 'alice', reason: 'ticket 42' },
    route: {
      kind: 'upstream',
      upstream: 'fs',
      method: 'tools/call',
      params: {},
      target: { exposed: 'fs__write', original: 'write' },
    },
  });
}

const opts = (clearArguments: string[] = []) => ({
  hmacKey: Buffer.alloc(32, 1),
  clearArguments,
  now: () => 1500,
});
const parse = (leaf: Buffer) => JSON.parse(leaf.toString('utf8')) as Record<string, unknown>;

describe('audit records', () => {
  it('hashes the canonical arguments and keeps their values only as keyed hashes', () => {
    const args = { path: '/etc/passwd', mode: 420, nested: { list: ['a', true] } };
    const r = parse(decisionRecord(call(args), opts()).leaf);
    assert.equal(r.argsHash, sha256hex(canonicalize(args)));
    const kept = r.args as { path: string; mode: string; nested: { list: string[] } };
    assert.match(kept.path, /^hmac-sha256:/);
    assert.match(kept.nested.list[1]!, /^hmac-sha256:/);
    assert.equal(r.argsClear, false);
    assert.equal(r.decision, 'none');
    assert.equal(r.reason, 'ticket 42');
    assert.equal(r.session, 'corr-1');
    assert.deepEqual(r.principal, { id: 'alice', authMethod: 'none', user: 'alice' });
  });

  it('keeps arguments in clear for tools configured as safe', () => {
    const r = parse(decisionRecord(call({ q: 'x' }), opts(['fs__write'])).leaf);
    assert.deepEqual(r.args, { q: 'x' });
  });

  it('stores oversized arguments beside the log, referenced by hash', () => {
    const big = { data: 'x'.repeat(MAX_LEAF * 2) };
    const item = decisionRecord(call(big), opts(['fs__write']));
    assert.ok(item.leaf.length < MAX_LEAF);
    const r = parse(item.leaf);
    const blob = item.blobs[0]!;
    assert.deepEqual(r.args, { blob: blob.hash, bytes: blob.data.length });
    assert.equal(blob.hash, sha256hex(blob.data));
    assert.deepEqual(JSON.parse(blob.data.toString()), big);
  });

  it('records the error code and latency of a failed call, linked to its decision', () => {
    const ctx = call({});
    ctx.error = new Denial('ERR_UNKNOWN_TARGET', 'no such tool /secret/path');
    ctx.response = errorResponse(1, ctx.error.toRpcError());
    const r = parse(outcomeRecord(ctx, 7, opts()).leaf);
    assert.equal(r.decisionIndex, 7);
    assert.equal(r.status, 'error');
    assert.equal(r.error, 'ERR_UNKNOWN_TARGET');
    assert.equal(r.latencyMs, 500);
    assert.ok(!JSON.stringify(r).includes('/secret/path'), 'only the code, never the detail');
  });

  it('records the hash of a successful result', () => {
    const ctx = call({});
    ctx.response = resultResponse(1, { content: [{ type: 'text', text: 'ok' }] });
    const r = parse(outcomeRecord(ctx, 0, opts()).leaf);
    assert.equal(r.status, 'ok');
    assert.equal(r.resultHash, sha256hex(canonicalize({ content: [{ type: 'text', text: 'ok' }] })));
  });

  it('reuses the hash made when the result was signed only while the result is that very one', () => {
    const ctx = call({});
    const signed = { content: [{ type: 'text', text: 'signed' }] };
    ctx.response = resultResponse(1, signed);
    ctx.sentResult = { result: signed, hash: 'made-at-signing' };
    assert.equal(parse(outcomeRecord(ctx, 0, opts()).leaf).resultHash, 'made-at-signing');
    // A later stage answered something else: hashed anew, whatever was made before.
    const other = { content: [{ type: 'text', text: 'other' }] };
    ctx.response = resultResponse(1, other);
    assert.equal(parse(outcomeRecord(ctx, 0, opts()).leaf).resultHash, sha256hex(canonicalize(other)));
  });
});

describe('audit records of hostile or unusual calls', () => {
  it('still records a call whose tool name and method hold lone surrogates, with U+FFFD in their place', () => {
    const ctx = testCallContext({
      request: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'no\udc00such' } },
      principal: { ...ANONYMOUS, id: 'mallory\ud83d' },
    });
    const odd = testCallContext({ request: { jsonrpc: '2.0', id: 2, method: 'tools/call\ud800' } });
    const decision = parse(decisionRecord(ctx, opts()).leaf);
    const outcome = parse(outcomeRecord(odd, null, opts()).leaf);
    assert.equal(decision.tool, 'no\ufffdsuch');
    assert.equal(outcome.method, 'tools/call\ufffd');
    assert.equal(
      (parse(outcomeRecord(ctx, null, opts()).leaf).principal as { id: string }).id,
      'mallory\ufffd',
    );
  });

  it('names no tool for protocol methods, whatever their params hold', () => {
    for (const method of ['ping', 'tools/list', 'initialize', 'logging/setLevel', 'tools/call\ud800']) {
      const ctx = testCallContext({
        request: { jsonrpc: '2.0', id: 1, method, params: { name: 'fs__write_file', uri: 'file:///etc' } },
      });
      assert.equal(parse(decisionRecord(ctx, opts()).leaf).tool, '', method);
      assert.equal(parse(outcomeRecord(ctx, null, opts()).leaf).tool, '', method);
      assert.equal(decisionRecord(ctx, opts()).meta.tool, '', method);
    }
  });

  it('names the tool, prompt or resource of each method that targets one', () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['tools/call', { name: 'fs__write_file' }, 'fs__write_file'],
      ['prompts/get', { name: 'fs__summarise' }, 'fs__summarise'],
      ['resources/read', { uri: 'file:///a', name: 'x' }, 'file:///a'],
      ['resources/subscribe', { uri: 'file:///b' }, 'file:///b'],
      ['resources/unsubscribe', { uri: 'file:///c' }, 'file:///c'],
      ['completion/complete', { ref: { type: 'ref/prompt', name: 'fs__p' } }, 'fs__p'],
      ['completion/complete', { ref: { type: 'ref/resource', uri: 'file:///d' } }, 'file:///d'],
    ];
    for (const [method, params, tool] of cases) {
      const ctx = testCallContext({ request: { jsonrpc: '2.0', id: 1, method, params: params as never } });
      assert.equal(parse(decisionRecord(ctx, opts()).leaf).tool, tool, method);
      assert.equal(decisionRecord(ctx, opts()).meta.tool, tool, method);
    }
  });

  it('names the resources a listen follows, with their upstreams, in its decision record', () => {
    const ctx = testCallContext({
      request: { jsonrpc: '2.0', id: 'sub', method: 'subscriptions/listen', params: {} },
      listenInput: {
        resources: [{ kind: 'resource', uri: 'test://a', server: 'conf' }],
        reason: '',
        reasonSource: null,
      },
    });
    assert.deepEqual(parse(decisionRecord(ctx, opts()).leaf).resources, ['conf:test://a']);
    assert.equal(parse(decisionRecord(call({}), opts()).leaf).resources, undefined);
  });
});
