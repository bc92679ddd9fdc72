import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ERRORS, type ErrorCode, internal, JSONRPC, PortcullisError } from '../../src/errors.ts';
import { AuthError } from '../../src/identity/errors.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const codes = Object.keys(ERRORS) as ErrorCode[];

function sources(dir: string): { path: string; text: string }[] {
  return readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => {
      const path = join(e.parentPath, e.name);
      return { path: path.slice(root.length), text: readFileSync(path, 'utf8') };
    });
}

/** Every source file, with the table itself cut out of errors.ts so that listing a code there is not using it. */
function sourcesOutsideTable(): { path: string; text: string }[] {
  return sources('src').map((f) => {
    if (f.path !== join('src', 'errors.ts')) return f;
    const start = f.text.indexOf('export const ERRORS = {');
    const end = f.text.indexOf('} as const satisfies', start);
    assert.ok(start >= 0 && end > start, 'errors.ts holds the ERRORS table');
    return { ...f, text: f.text.slice(0, start) + f.text.slice(end) };
  });
}

const withoutComments = (text: string): string => text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');

function readmeErrorSection(): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Errors\n');
  assert.ok(start >= 0, 'README has an "Errors" section');
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

describe('the error table', () => {
  it('has every code raised somewhere in src/', () => {
    const text = sourcesOutsideTable()
      .map((f) => f.text)
      .join('\n');
    const unused = codes.filter((code) => !text.includes(`'${code}'`));
    assert.deepEqual(unused, [], 'codes in the table that nothing raises');
  });

  it('names every code src/ uses, so no code is raised or compared that the table does not know', () => {
    const known = new Set<string>(codes);
    const strays = sourcesOutsideTable().flatMap((f) =>
      [...f.text.matchAll(/'(ERR_[A-Z0-9_]+)'/g)]
        .map((m) => m[1]!)
        .filter((code) => !known.has(code))
        .map((code) => `${f.path}: ${code}`),
    );
    // The CLI matches the config family by prefix; that is not a code of its own.
    assert.deepEqual(
      strays.filter((s) => !s.endsWith(': ERR_CONFIG')),
      [],
    );
  });

  it('is documented in the README with each code, JSON-RPC code and HTTP status, and nothing more', () => {
    const section = readmeErrorSection();
    const rows = new Map(
      section
        .split('\n')
        .filter((line) => line.startsWith('| `ERR_'))
        .map((line) => line.split('|').map((cell) => cell.trim().replaceAll('`', '')))
        .map(([, code, rpc, http]) => [code!, { rpc: Number(rpc), http: Number(http) }]),
    );
    for (const code of codes) {
      const { rpc, http } = ERRORS[code];
      assert.deepEqual(rows.get(code), { rpc, http }, `README row for ${code}`);
    }
    const listed = [...rows.keys()];
    assert.deepEqual(
      listed.filter((code) => !(code in ERRORS)),
      [],
      'README rows for codes the table does not have',
    );
    assert.equal(listed.length, codes.length);
  });

  it('leaves wire numbers out of throw sites and listeners: only errors.ts writes a JSON-RPC error number', () => {
    const handWritten = sourcesOutsideTable()
      .filter((f) => f.path !== join('src', 'errors.ts'))
      .flatMap((f) =>
        [
          ...withoutComments(f.text).matchAll(/-32[0-9]{3}\b|\b(?:rpcCode|httpStatus|publicMessage)\s*:/g),
        ].map((m) => `${f.path}: ${m[0]}`),
      );
    assert.deepEqual(handWritten, []);
  });

  it('gives every internal fault a 5xx status, never a client-fault one', () => {
    for (const code of codes) {
      const { rpc, http } = ERRORS[code];
      if (rpc === JSONRPC.INTERNAL_ERROR)
        assert.ok(http >= 500, `${code} is a server fault answered ${http}`);
    }
    const fault = internal(new Error('disk on fire'));
    assert.equal(fault.code, 'ERR_INTERNAL');
    assert.equal(fault.httpStatus, 500);
    assert.deepEqual(fault.toRpcError(), { code: JSONRPC.INTERNAL_ERROR, message: 'Internal error' });
  });

  it("keeps session-not-found on the SDK's number and the gateway's denials on another", () => {
    assert.deepEqual(ERRORS.ERR_SESSION_UNKNOWN, {
      rpc: JSONRPC.SESSION_NOT_FOUND,
      http: 404,
      public: 'Session not found',
    });
    const denials = codes.filter((code) => ERRORS[code].rpc === JSONRPC.DENIED);
    assert.ok(denials.includes('ERR_POLICY_DENIED') && denials.includes('ERR_AUTH_INVALID'));
    assert.notEqual(JSONRPC.DENIED, JSONRPC.SESSION_NOT_FOUND);
    assert.notEqual(JSONRPC.DENIED, JSONRPC.OVERLOADED);
  });

  it('takes the wire mapping of a domain error from the table, and its text only from the table and safe args', () => {
    const scope = new AuthError('insufficient_scope', { token: 'the secret' });
    assert.equal(scope.code, 'ERR_AUTH_INSUFFICIENT_SCOPE');
    assert.equal(scope.httpStatus, ERRORS.ERR_AUTH_INSUFFICIENT_SCOPE.http);
    assert.deepEqual(scope.toRpcError(), { code: JSONRPC.DENIED, message: 'Insufficient scope' });
    const unknown = new PortcullisError('ERR_UNKNOWN_TARGET', 'No tool named "fs__secret"', {
      publicArgs: ['tool'],
    });
    assert.deepEqual(unknown.toRpcError(), { code: JSONRPC.INVALID_PARAMS, message: 'Unknown tool' });
  });
});
