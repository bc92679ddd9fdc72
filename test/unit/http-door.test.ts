import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type DoorListen, DoorRules } from '../../src/transport/http-door.ts';

const METADATA_PATH = '/.well-known/oauth-protected-resource/mcp';
const metadata = { resource: 'http://127.0.0.1/mcp' };

function rules(listen: Partial<DoorListen> = {}) {
  return new DoorRules(
    { host: '127.0.0.1', allowedHosts: [], allowedOrigins: [], path: '/mcp', ...listen },
    (path) => (path === METADATA_PATH ? metadata : undefined),
  );
}

const request = (method: string, url: string, headers: Record<string, string> = {}) => ({
  method,
  url,
  headers: { host: '127.0.0.1:8080', ...headers },
});

describe('the HTTP door', () => {
  it('lets a loopback request to the MCP path through, whatever its method', () => {
    for (const method of ['POST', 'GET', 'DELETE', 'PUT'])
      assert.deepEqual(rules().admit(request(method, '/mcp?x=1')), { kind: 'mcp' });
  });

  it('refuses a Host that does not name the gateway before anything else', () => {
    const admission = rules().admit(request('GET', METADATA_PATH, { host: 'evil.example' }));
    assert.deepEqual(admission, { kind: 'refused', code: 'ERR_HOST_FORBIDDEN' });
    assert.deepEqual(rules().admit({ method: 'POST', url: '/mcp', headers: {} }), {
      kind: 'refused',
      code: 'ERR_HOST_FORBIDDEN',
    });
  });

  it('accepts a listed Host on a gateway bound to another address', () => {
    const open = rules({ host: '0.0.0.0', allowedHosts: ['gw.example'] });
    assert.deepEqual(open.admit(request('POST', '/mcp', { host: 'gw.example:443' })), { kind: 'mcp' });
    assert.deepEqual(open.admit(request('POST', '/mcp', { host: 'other.example' })), {
      kind: 'refused',
      code: 'ERR_HOST_FORBIDDEN',
    });
  });

  it('refuses a browser Origin that is neither loopback nor listed, and passes a listed one', () => {
    const foreign = request('POST', '/mcp', { origin: 'https://evil.example' });
    assert.deepEqual(rules().admit(foreign), { kind: 'refused', code: 'ERR_ORIGIN_FORBIDDEN' });
    const listed = rules({ allowedOrigins: ['https://evil.example'] });
    assert.deepEqual(listed.admit(foreign), { kind: 'mcp' });
    assert.deepEqual(rules().admit(request('POST', '/mcp', { origin: 'http://localhost:3000' })), {
      kind: 'mcp',
    });
  });

  it('serves a public identity document to GET only, without reaching the MCP path', () => {
    assert.deepEqual(rules().admit(request('GET', METADATA_PATH)), { kind: 'document', doc: metadata });
    assert.deepEqual(rules().admit(request('POST', METADATA_PATH)), {
      kind: 'refused',
      code: 'ERR_NOT_FOUND',
    });
  });

  it('answers not found for any other path', () => {
    assert.deepEqual(rules().admit(request('POST', '/mcp/extra')), {
      kind: 'refused',
      code: 'ERR_NOT_FOUND',
    });
    assert.deepEqual(rules().admit(request('GET', '/')), { kind: 'refused', code: 'ERR_NOT_FOUND' });
  });
});
