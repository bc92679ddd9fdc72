import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { covers, parseScope, scopeText } from '../../src/breakglass/scope.ts';
import { failsWith } from '../helpers.ts';

const alice = { id: 'p_alice', user: 'alice' };
const bob = { id: 'p_bob', user: 'bob' };

describe('a break-glass scope', () => {
  it('reads tool, upstream and principal terms, and writes them back in a stable order', () => {
    const s = parseScope(
      ' upstream:crm , tool:fs__write_*,principal:user:alice,tool:fs__read_text_file,tool:fs__write_*',
    );
    assert.deepEqual(s, {
      tools: ['fs__read_text_file', 'fs__write_*'],
      upstreams: ['crm'],
      principals: ['user:alice'],
    });
    assert.equal(scopeText(s), 'tool:fs__read_text_file,tool:fs__write_*,upstream:crm,principal:user:alice');
    assert.deepEqual(parseScope(scopeText(s)), s);
  });

  it('refuses a scope without a tool or upstream term: there is no scope for everything', () => {
    for (const text of ['principal:user:alice', 'tool:*', '', 'tool:*,principal:p_alice'])
      assert.throws(() => parseScope(text), failsWith('ERR_BREAKGLASS_SCOPE'), text);
  });

  it('refuses unknown kinds, malformed names, empty terms and upstreams the config does not have', () => {
    for (const text of [
      'tools:fs__write_file',
      'tool:fs write',
      'tool:fs__a*b',
      'tool:fs__write_file,',
      'upstream:FS',
      'principal:',
      'principal:user:',
      'tool:fs__write_file,principal:a b',
    ])
      assert.throws(() => parseScope(text, ['fs']), failsWith('ERR_BREAKGLASS_SCOPE'), text);
    assert.throws(
      () => parseScope('upstream:crm', ['fs']),
      failsWith('ERR_BREAKGLASS_SCOPE', /no upstream named crm/),
    );
    assert.deepEqual(parseScope('upstream:fs', ['fs']).upstreams, ['fs']);
  });

  it('refuses more than 32 terms', () => {
    const many = Array.from({ length: 33 }, (_, i) => `tool:t${i}`).join(',');
    assert.throws(() => parseScope(many), failsWith('ERR_BREAKGLASS_SCOPE', /more than 32/));
  });

  it('covers a tool by its exact name or a prefix, and every call to a named upstream', () => {
    const s = parseScope('tool:fs__write_*,tool:fs__read_text_file,upstream:crm');
    const call = (upstream: string, tool?: string) => covers(s, { principal: alice, upstream, tool });
    assert.equal(call('fs', 'fs__write_file'), true);
    assert.equal(call('fs', 'fs__read_text_file'), true);
    assert.equal(call('fs', 'fs__read_text_file_extra'), false);
    assert.equal(call('fs', 'fs__list_directory'), false);
    assert.equal(call('fs'), false, 'a resource read of fs is not a tool call');
    assert.equal(call('crm', 'crm__export'), true);
    assert.equal(call('crm'), true);
  });

  it('covers only the named principals, by principal id or by user', () => {
    const byUser = parseScope('upstream:fs,principal:user:alice');
    assert.equal(covers(byUser, { principal: alice, upstream: 'fs' }), true);
    assert.equal(covers(byUser, { principal: bob, upstream: 'fs' }), false);
    assert.equal(covers(byUser, { principal: { id: 'user:alice' }, upstream: 'fs' }), false);
    const byId = parseScope('upstream:fs,principal:p_bob');
    assert.equal(covers(byId, { principal: bob, upstream: 'fs' }), true);
    assert.equal(covers(byId, { principal: alice, upstream: 'fs' }), false);
  });
});
