import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { customDetectorSchema, PII_TYPES, protectSchema } from '../../src/protect/config.ts';

describe('the protect piece of the config schema', () => {
  it('defaults to every detector on, redaction, and bounds on each scan', () => {
    const config = protectSchema.parse(undefined);
    assert.deepEqual(config.detectors, { secrets: true, pii: [...PII_TYPES], custom: [] });
    assert.equal(config.mask.mode, 'redact');
    assert.deepEqual(config.limits, { maxChars: 16 * 1024 * 1024, maxMillis: 1000, maxDepth: 128 });
  });

  it('takes a custom detector with a name, an RE2 pattern and a validator from the fixed list', () => {
    assert.deepEqual(
      customDetectorSchema.parse({ name: 'employee-id', pattern: String.raw`\bEMP-\d{6}\b` }),
      {
        name: 'employee-id',
        pattern: String.raw`\bEMP-\d{6}\b`,
        validator: 'none',
        kind: 'pii',
      },
    );
  });

  it('refuses a pattern RE2 cannot run, an unknown validator and unknown keys, naming the path', () => {
    const bad = protectSchema.safeParse({
      detectors: {
        custom: [
          { name: 'backref', pattern: '(a)\\1' },
          { name: 'lookahead', pattern: 'a(?=b)', validator: 'none' },
          { name: 'odd', pattern: 'x', validator: 'crc32' },
          { name: 'extra', pattern: 'x', colour: 'red' },
          { name: 'Bad Name', pattern: 'x' },
        ],
      },
    });
    assert.equal(bad.success, false);
    const paths = bad.error!.issues.map((i) => i.path.join('.'));
    assert.deepEqual(paths.sort(), [
      'detectors.custom.0.pattern',
      'detectors.custom.1.pattern',
      'detectors.custom.2.validator',
      'detectors.custom.3',
      'detectors.custom.4.name',
    ]);
  });

  it('takes masking per tool, upstream and tier, and refuses hash masking without a key reference', () => {
    const config = protectSchema.parse({
      mask: {
        tools: { hr__read_employee: 'partial' },
        upstreams: { hr: 'hash' },
        tiers: { 'read-sensitive': 'redact' },
        hashKey: 'env:MASK_KEY',
      },
    });
    assert.deepEqual(config.mask.tiers, { 'read-sensitive': 'redact' });
    const issues = (mask: unknown) =>
      protectSchema.safeParse({ mask }).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    assert.deepEqual(issues({ upstreams: { hr: 'hash' } }), ['mask.hashKey: hash masking needs a hashKey']);
    assert.deepEqual(issues({ mode: 'hash', hashKey: 'a plain key' }), [
      'mask.hashKey: must be a reference: env:NAME or file:PATH',
    ]);
    assert.deepEqual(issues({ tiers: { admin: 'block' } }), ['mask.tiers: Unrecognized key: "admin"']);
  });
});
