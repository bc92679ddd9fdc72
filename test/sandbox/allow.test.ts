import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAllowed, parseAuthority } from '../../src/sandbox/allow.ts';

describe('the egress allowlist', () => {
  const allow = ['api.example.com', '*.corp.example', 'localhost:8080', '[::1]:9000'];
  const cases: [string, number, boolean][] = [
    ['api.example.com', 443, true],
    ['API.Example.com.', 80, true],
    ['api.example.com', 22, false],
    ['evil-api.example.com', 443, false],
    ['x.corp.example', 443, true],
    ['corp.example', 443, false],
    ['localhost', 8080, true],
    ['localhost', 5432, false],
    ['::1', 9000, true],
    ['127.0.0.1', 8080, false],
    ['169.254.169.254', 80, false],
  ];
  for (const [host, port, allowed] of cases) {
    it(`${allowed ? 'allows' : 'refuses'} ${host}:${port}`, () => {
      assert.equal(isAllowed(allow, { host, port }), allowed);
    });
  }

  it('reads CONNECT targets and refuses malformed ones', () => {
    assert.deepEqual(parseAuthority('example.com:443'), { host: 'example.com', port: 443 });
    assert.deepEqual(parseAuthority('[::1]:80'), { host: '::1', port: 80 });
    assert.equal(parseAuthority('example.com'), undefined);
    assert.equal(parseAuthority('a b:1'), undefined);
    assert.equal(parseAuthority('x:70000'), undefined);
  });
});
