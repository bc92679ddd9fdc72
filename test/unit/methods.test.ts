import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseStage } from '../../src/pipeline/stages/parse.ts';
import { ACTION } from '../../src/policy/model/cedar-schema.ts';
import { isListMethod, METHODS, methodSpec } from '../../src/protocol/methods.ts';
import { requestTarget } from '../../src/protocol/targets.ts';
import { testCallContext } from '../helpers.ts';

describe('the method table', () => {
  it('names an action of its own for exactly the methods the Cedar schema declares one for', () => {
    const own = Object.entries(METHODS)
      .filter(([, spec]) => 'action' in spec && spec.action === 'own')
      .map(([method]) => method);
    const declared = Object.values(ACTION).filter((a) => a !== ACTION.other && a !== ACTION.toolsCall);
    assert.deepEqual([...own].sort(), [...declared].sort());
    assert.equal(methodSpec(ACTION.toolsCall)?.action, 'per-tool');
  });

  it('knows no method through the object prototype', () => {
    assert.equal(methodSpec('toString'), undefined);
    assert.equal(methodSpec('__proto__'), undefined);
    assert.equal(isListMethod('constructor'), false);
  });

  it('gives every list the call its items are for, and every answered-here list a gateway route', () => {
    for (const [method, spec] of Object.entries(METHODS)) {
      if (!('list' in spec)) continue;
      assert.equal(spec.answeredBy, 'gateway', method);
      assert.ok(methodSpec(spec.list.callMethod), `${method} items are for a known call`);
    }
  });

  it('reads the target of each targeting method from the parameter its row names', () => {
    assert.equal(requestTarget('tools/call', { name: 'fs__read' }), 'fs__read');
    assert.equal(requestTarget('resources/subscribe', { uri: 'file:///a' }), 'file:///a');
    assert.equal(requestTarget('completion/complete', { ref: { type: 'ref/prompt', name: 'p' } }), 'p');
    assert.equal(requestTarget('tools/list', { name: 'x' }), undefined);
  });

  it('refuses a modern client every method the 2026-07-28 era removed, as method not found', () => {
    const removed = Object.entries(METHODS).filter(([, spec]) => spec.era === 'legacy');
    assert.ok(removed.length > 0);
    for (const [method] of removed) {
      const ctx = testCallContext({ era: 'modern', request: { jsonrpc: '2.0', id: 1, method, params: {} } });
      assert.throws(() => parseStage.run(ctx), { code: 'ERR_METHOD_NOT_FOUND' }, method);
    }
  });
});
