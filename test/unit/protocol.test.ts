import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PortcullisError } from '../../src/errors.ts';
import { type JsonRpcRequest, nestingExceeds, parseMessage, snapshot } from '../../src/jsonrpc.ts';
import { checkParamHeaders, decodeHeaderValue, encodeHeaderValue } from '../../src/protocol/modern.ts';
import { SseParser } from '../../src/protocol/sse.ts';
import { exposeName, splitName } from '../../src/upstream/naming.ts';

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof PortcullisError);
    return e.code;
  }
  return 'none';
};

describe('JSON-RPC parsing', () => {
  it('gives ERR_PARSE for malformed JSON and ERR_INVALID_REQUEST for a batch or a bad envelope', () => {
    assert.equal(
      codeOf(() => parseMessage('{')),
      'ERR_PARSE',
    );
    assert.equal(
      codeOf(() => parseMessage('[]')),
      'ERR_INVALID_REQUEST',
    );
    assert.equal(
      codeOf(() => parseMessage('{"jsonrpc":"1.0","id":1,"method":"x"}')),
      'ERR_INVALID_REQUEST',
    );
    assert.equal(
      codeOf(() => parseMessage('{"jsonrpc":"2.0","id":1.5,"method":"x"}')),
      'ERR_INVALID_REQUEST',
    );
    assert.equal(
      codeOf(() => parseMessage('{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}')),
      'ERR_INVALID_REQUEST',
    );
  });

  it('refuses nesting deeper than the limit before parsing, counting no bracket inside a string', () => {
    const nested = (n: number) =>
      `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":${'['.repeat(n)}${']'.repeat(n)}}}`;
    assert.equal(
      codeOf(() => parseMessage(nested(6), { maxDepth: 8 })),
      'none',
    );
    assert.equal(
      codeOf(() => parseMessage(nested(7), { maxDepth: 8 })),
      'ERR_INVALID_REQUEST',
    );
    assert.equal(nestingExceeds(String.raw`["[[[[", "\\", "\\\"[[[["]`, 1), false);
    assert.equal(nestingExceeds(String.raw`["\"[[", [[]]]`, 2), true);
    assert.equal(nestingExceeds(String.raw`["\"[[", [[]]]`, 3), false);
    assert.equal(nestingExceeds('{"a":{"b":{}}}', 3), false);
    assert.equal(nestingExceeds('{"a":{"b":{}}}', 2), true);
    // Text no longer than the bound is not scanned, and cannot exceed it even unclosed.
    assert.equal(nestingExceeds('[[[', 3), false);
    assert.equal(nestingExceeds('[[[[', 3), true);
  });

  it('keeps fields it does not know', () => {
    const m = parseMessage('{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":1},"x-extra":true}');
    assert.equal((m as Record<string, unknown>)['x-extra'], true);
  });
});

describe('a snapshot of a message', () => {
  it('is a deep copy that a later change to the original does not reach', () => {
    const original = parseMessage(
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"list":[1,{"a":"b"}],"n":null}}}',
    ) as JsonRpcRequest;
    const copy = snapshot(original);
    assert.deepEqual(copy, original);
    const args = original.params?.arguments as { list: [number, { a: string }] };
    args.list[1].a = 'changed';
    args.list.push(2);
    assert.deepEqual(copy.params?.arguments, { list: [1, { a: 'b' }], n: null });
  });

  it('keeps a "__proto__" key as data, as JSON.parse made it, and leaves the prototype alone', () => {
    const copy = snapshot(JSON.parse('{"__proto__":{"polluted":true},"x":1}'));
    assert.equal(Object.getPrototypeOf(copy), Object.prototype);
    assert.deepEqual(Object.keys(copy), ['__proto__', 'x']);
    assert.equal((copy as { polluted?: boolean }).polluted, undefined);
    assert.deepEqual(Object.getOwnPropertyDescriptor(copy, '__proto__')?.value, { polluted: true });
  });

  it('copies what is not JSON the way structuredClone does', () => {
    const when = new Date(0);
    const copy = snapshot({ when, tags: new Map([['a', 1]]) });
    assert.ok(copy.when instanceof Date && copy.when !== when);
    assert.equal(copy.when.getTime(), 0);
    assert.deepEqual([...copy.tags], [['a', 1]]);
    assert.throws(() => snapshot({ f: () => 1 }), { name: 'DataCloneError' });
  });
});

describe('names and headers', () => {
  it('splits exposed names at the first separator into prefix and upstream name', () => {
    const prefixes = new Set(['fs', 'db']);
    assert.deepEqual(splitName('fs__read__file', prefixes), { prefix: 'fs', name: 'read__file' });
    assert.equal(splitName('xx__read', prefixes), undefined);
    assert.equal(splitName('fs__', prefixes), undefined);
    assert.equal(exposeName('fs', 'read_file'), 'fs__read_file');
    assert.deepEqual(splitName('anything', new Set([''])), { prefix: '', name: 'anything' });
  });

  it('round-trips non-ASCII header values through the base64 sentinel', () => {
    const encoded = encodeHeaderValue('Hello, 世界');
    assert.equal(encoded, '=?base64?SGVsbG8sIOS4lueVjA==?=');
    assert.equal(decodeHeaderValue(encoded), 'Hello, 世界');
    assert.equal(encodeHeaderValue('plain'), 'plain');
    assert.notEqual(encodeHeaderValue('=?base64?abc?='), '=?base64?abc?=');
  });

  it('checks Mcp-Param headers against the arguments a tool marks with x-mcp-header', () => {
    const schema = { properties: { region: { type: 'string', 'x-mcp-header': 'Region' } } };
    checkParamHeaders({ region: 'eu' }, schema, { 'mcp-param-region': 'eu' });
    assert.equal(
      codeOf(() => checkParamHeaders({ region: 'eu' }, schema, { 'mcp-param-region': 'us' })),
      'ERR_HEADER_MISMATCH',
    );
    assert.equal(
      codeOf(() => checkParamHeaders({ region: 'eu' }, schema, {})),
      'ERR_HEADER_MISMATCH',
    );
  });

  it('parses SSE events split across chunks and line endings', () => {
    const events: string[] = [];
    const p = new SseParser((d) => events.push(d));
    p.push('event: message\r\ndata: {"a"');
    p.push(':1}\r\n\r\n: comment\n\ndata: x\ndata: y\n\n');
    assert.deepEqual(events, ['{"a":1}', 'x\ny']);
  });

  it('reads a CRLF split between two chunks as one line end, not as the blank line that ends an event', () => {
    const events: string[] = [];
    const p = new SseParser((d) => events.push(d));
    p.push('data: a\r');
    p.push('\ndata: b\r');
    p.push('');
    p.push('\n\r\n');
    assert.deepEqual(events, ['a\nb']);
  });

  it('yields the same events however a stream is cut into chunks', () => {
    const big = JSON.stringify({ tools: Array.from({ length: 300 }, (_, i) => ({ name: `t${i}` })) });
    const stream = `id: 1\r\nevent: message\r\ndata: ${big}\r\n\r\n: ping\rdata: x\rdata: y\r\rdata: z\n\n`;
    const whole: string[] = [];
    new SseParser((d, id) => whole.push(`${id}|${d}`)).push(stream);
    assert.equal(whole.length, 3);
    for (const size of [1, 2, 3, 7, 64, 1000, 4096]) {
      const got: string[] = [];
      const p = new SseParser((d, id) => got.push(`${id}|${d}`));
      for (let i = 0; i < stream.length; i += size) p.push(stream.slice(i, i + size));
      assert.deepEqual(got, whole, `chunks of ${size}`);
    }
  });
});
