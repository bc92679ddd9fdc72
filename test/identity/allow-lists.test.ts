import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  allowListsOf,
  allowsListed,
  allowsResource,
  checkAllowLists,
} from '../../src/identity/allow-lists.ts';

const lists = allowListsOf({
  allowed_tools: ['fs__read'],
  allowed_resources: ['file:///srv/*.txt', 'memory://graph'],
}) as Exclude<ReturnType<typeof allowListsOf>, 'invalid' | undefined>;

describe('token allow lists', () => {
  it('leaves every kind a token does not name empty, and refuses a list that is not strings', () => {
    assert.deepEqual(lists.prompts, []);
    assert.equal(allowListsOf({}), undefined);
    assert.equal(allowListsOf({ allowed_prompts: ['a', 1] }), 'invalid');
    assert.equal(allowListsOf({ allowed_tools: 'fs__read' }), 'invalid');
  });

  it('matches resource patterns with * as any run of characters and nothing else special', () => {
    assert.equal(allowsResource(lists, 'file:///srv/a/b.txt'), true);
    assert.equal(allowsResource(lists, 'file:///srv/a.txt.bak'), false);
    assert.equal(allowsResource(lists, 'memory://graph'), true);
    assert.equal(allowsResource(lists, 'memory://graphs'), false);
    const dots = allowListsOf({ allowed_resources: ['a.c'] }) as typeof lists;
    assert.equal(allowsResource(dots, 'abc'), false);
  });

  it('shows a template only when its own text matches a pattern', () => {
    assert.equal(allowsListed(lists, 'resources/templates/list', 'file:///srv/{name}.txt'), true);
    assert.equal(allowsListed(lists, 'resources/templates/list', 'file:///{path}'), false);
    assert.equal(allowsListed(lists, 'prompts/list', 'fs__read'), false);
  });

  it('refuses a request kind the lists do not cover as an unknown method', () => {
    assert.throws(() => checkAllowLists(lists, 'tasks/get', {}), { code: 'ERR_METHOD_NOT_FOUND' });
    assert.throws(() => checkAllowLists(lists, 'completion/complete', { ref: { type: 'ref/other' } }), {
      code: 'ERR_UNKNOWN_TARGET',
    });
    assert.doesNotThrow(() => checkAllowLists(lists, 'ping', undefined));
  });
});
