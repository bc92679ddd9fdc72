import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PortcullisError } from '../../src/errors.ts';
import { compileDetectors } from '../../src/protect/compile.ts';
import { maskText, maskValue } from '../../src/protect/mask.ts';
import { type MaskPolicy, maskResult, withheldError } from '../../src/protect/result.ts';
import { scanValue } from '../../src/protect/scan.ts';
import type { ScanBounds } from '../../src/protect/types.ts';

const detectors = compileDetectors();
const bounds: ScanBounds = { maxChars: 1 << 24, maxMillis: 60_000, maxDepth: 64 };
const KEY = 'AKIAZ7VRSQ5TQ4BGXM2Q';
const result = () => ({
  content: [{ type: 'text', text: `id ${KEY} for jane.doe@example.com` }],
  structuredContent: { owner: 'jane.doe@example.com', note: 'nothing here' },
});
const textOf = (v: unknown): string => (v as { content: { text: string }[] }).content[0]!.text;
const policy = (mode: MaskPolicy['mode'], extra: Partial<MaskPolicy> = {}): MaskPolicy => ({
  mode,
  bounds,
  ...extra,
});

describe('masking a result', () => {
  it('redacts each finding with a typed placeholder and counts types, never values', () => {
    const masked = maskResult(detectors, result(), policy('redact'));
    assert.equal(masked.outcome, 'masked');
    if (masked.outcome !== 'masked') return;
    assert.equal(textOf(masked.value), 'id [REDACTED:aws-access-token] for [REDACTED:email]');
    assert.deepEqual((masked.value as { structuredContent: unknown }).structuredContent, {
      owner: '[REDACTED:email]',
      note: 'nothing here',
    });
    assert.deepEqual(masked.summary, { 'aws-access-token': 1, email: 2 });
    assert.ok(!JSON.stringify(masked.summary).includes('jane'));
  });

  it('keeps the last four characters in partial mode, and hides short values whole', () => {
    const masked = maskResult(detectors, result(), policy('partial'));
    assert.equal(masked.outcome, 'masked');
    if (masked.outcome !== 'masked') return;
    assert.equal(textOf(masked.value), 'id [REDACTED:aws-access-token:…XM2Q] for [REDACTED:email:….com]');
    const short = maskText('pin 1234', [{ type: 'pin', start: 4, end: 8 }], (t, s) => `[${t}:${s.length}]`);
    assert.equal(short, 'pin [pin:4]');
  });

  it('hashes with the configured key so equal values correlate and other keys do not', () => {
    const a = maskResult(detectors, result(), policy('hash', { hashKey: Buffer.from('key one') }));
    const b = maskResult(detectors, result(), policy('hash', { hashKey: Buffer.from('key one') }));
    const c = maskResult(detectors, result(), policy('hash', { hashKey: Buffer.from('key two') }));
    assert.ok(a.outcome === 'masked' && b.outcome === 'masked' && c.outcome === 'masked');
    const emails = (v: unknown) =>
      [...textOf(v).matchAll(/\[HASHED:email:([0-9a-f]{16})\]/g)].map((m) => m[1]);
    const owner = (v: unknown) => (v as { structuredContent: { owner: string } }).structuredContent.owner;
    assert.equal(textOf(a.value), textOf(b.value));
    assert.equal(owner(a.value), `[HASHED:email:${emails(a.value)[0]}]`);
    assert.notEqual(textOf(a.value), textOf(c.value));
    assert.ok(!textOf(a.value).includes(KEY));
  });

  it('withholds the whole result in block mode, with ERR_RESULT_WITHHELD and the counts', () => {
    const blocked = maskResult(detectors, result(), policy('block'));
    assert.equal(blocked.outcome, 'withheld');
    if (blocked.outcome !== 'withheld') return;
    assert.equal(blocked.reason, 'blocked');
    assert.deepEqual([...blocked.types.secrets], ['aws-access-token']);
    const error = withheldError(blocked);
    assert.equal(error.code, 'ERR_RESULT_WITHHELD');
    assert.deepEqual(error.toRpcError(), {
      code: -32004,
      message: 'Result withheld: it holds sensitive data',
    });
    assert.deepEqual(error.detail.masked, { 'aws-access-token': 1, email: 2 });
  });

  it('passes a clean result through as it is, even in block mode', () => {
    const clean = { content: [{ type: 'text', text: 'all quiet' }] };
    const passed = maskResult(detectors, clean, policy('block'));
    assert.equal(passed.outcome, 'clean');
    if (passed.outcome === 'clean') assert.equal(passed.value, clean);
  });

  it('withholds a result whose scan hit a bound, rather than pass it unmasked', () => {
    const big = { content: [{ type: 'text', text: `${KEY} ${'x'.repeat(4096)}` }] };
    const cut = maskResult(detectors, big, { mode: 'redact', bounds: { ...bounds, maxChars: 1024 } });
    assert.equal(cut.outcome, 'withheld');
    if (cut.outcome !== 'withheld') return;
    assert.equal(cut.reason, 'bound');
    assert.deepEqual(cut.boundHit, { bound: 'chars', limit: 1024 });
    assert.equal(
      withheldError(cut).publicMessage,
      'Result withheld: it could not be checked for sensitive data',
    );
  });

  it('withholds a result it cannot mask (hash mode without a key)', () => {
    const failed = maskResult(detectors, result(), policy('hash'));
    assert.equal(failed.outcome, 'withheld');
    if (failed.outcome === 'withheld') assert.equal(failed.reason, 'failure');
    const { findings } = scanValue(detectors, result(), bounds);
    assert.throws(
      () => maskValue(result(), findings, 'hash'),
      (e: unknown) => e instanceof PortcullisError && e.code === 'ERR_RESULT_WITHHELD',
    );
  });

  it('leaves the input untouched and copies only the containers on a masked path', () => {
    const input = { a: { b: 'bob@example.com' }, untouched: { deep: ['x'] } };
    const before = JSON.stringify(input);
    const { findings } = scanValue(detectors, input, bounds);
    const masked = maskValue(input, findings, 'redact');
    assert.equal(JSON.stringify(input), before);
    assert.equal(masked.outcome, 'masked');
    if (masked.outcome !== 'masked') return;
    assert.deepEqual(masked.value, { a: { b: '[REDACTED:email]' }, untouched: { deep: ['x'] } });
    assert.equal((masked.value as typeof input).untouched, input.untouched);
  });

  it('merges overlapping findings into one placeholder, named by the one that starts first', () => {
    const text = 'xx 0123456789 yy';
    const masked = maskText(
      text,
      [
        { type: 'b', start: 6, end: 13 },
        { type: 'a', start: 3, end: 9 },
      ],
      (type, secret) => `[${type}:${secret}]`,
    );
    assert.equal(masked, 'xx [a:0123456789] yy');
  });

  it('masks inside base64 blobs and encodes them back as they were stored', () => {
    const binary = Buffer.concat([Buffer.from([0xff, 0x00]), Buffer.from(` ${KEY} `)]);
    const value = {
      contents: [
        { uri: 'file:///a', blob: Buffer.from(`key=${KEY}\n`).toString('base64') },
        { uri: 'file:///b', blob: binary.toString('base64') },
      ],
    };
    const masked = maskResult(detectors, value, policy('redact'));
    assert.equal(masked.outcome, 'masked');
    if (masked.outcome !== 'masked') return;
    const blobs = (masked.value as typeof value).contents.map((c) => Buffer.from(c.blob, 'base64'));
    assert.equal(blobs[0]!.toString('utf8'), 'key=[REDACTED:aws-access-token]\n');
    assert.deepEqual([...blobs[1]!.subarray(0, 2)], [0xff, 0x00]);
    assert.equal(blobs[1]!.subarray(2).toString('latin1'), ' [REDACTED:aws-access-token] ');
    const partial = maskResult(detectors, value, policy('partial'));
    assert.equal(partial.outcome, 'masked');
    if (partial.outcome !== 'masked') return;
    const bytes = Buffer.from((partial.value as typeof value).contents[1]!.blob, 'base64');
    assert.equal(bytes.subarray(2).toString('latin1'), ' [REDACTED:aws-access-token:...XM2Q] ');
  });
});
