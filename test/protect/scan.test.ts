import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileDetectors } from '../../src/protect/compile.ts';
import { detectedIn } from '../../src/protect/result.ts';
import { scanValue } from '../../src/protect/scan.ts';
import type { ScanBounds } from '../../src/protect/types.ts';

const detectors = compileDetectors();
const roomy: ScanBounds = { maxChars: 1 << 24, maxMillis: 60_000, maxDepth: 64 };

const PEM_BODY = [
  'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDndJt7NaG8T64/',
  'qMJ9QyvAY42n1+m0aOk5DAvPgKwaAFOWzxPxp7Y4GAW4rVJh+fNCFiWFoWCLIkVU',
  'hyEMZ8ou0/MTV+1pqyQOKgRId/Hn2lUpQNfkSz5DamJYyjn+L4FwelVsMpo/7KX0',
  'IIvjtNeYHuQLaWRgKAVy4Nxjcf0JoX7rqbd+5atwaYltRZWDNoH+eA8Jt4YuCMoU',
];
const PEM = `-----BEGIN PRIVATE KEY-----\n${PEM_BODY.join('\n')}\n-----END PRIVATE KEY-----`;

describe('scanning a JSON value', () => {
  it('finds a PEM key inside a JSON string whose newlines were \\n escapes, at offsets into the decoded string', () => {
    const wire = JSON.stringify({ content: [{ type: 'text', text: `key file:\n${PEM}\nend` }] });
    assert.ok(wire.includes('\\n'), 'the serialized form has escapes');
    const value = JSON.parse(wire) as { content: { text: string }[] };
    const { findings } = scanValue(detectors, value, roomy);
    const key = findings.find((f) => f.type === 'private-key');
    assert.ok(key, JSON.stringify(findings));
    assert.deepEqual(key.path, ['content', 0, 'text']);
    const text = value.content[0]!.text;
    assert.equal(key.start, text.indexOf('-----BEGIN'));
    assert.equal(key.end, text.indexOf('-----END PRIVATE KEY-----') + '-----END PRIVATE KEY-----'.length);
  });

  it('reads structuredContent, embedded resources, resource contents and prompt messages at any depth', () => {
    const value = {
      structuredContent: { rows: [{ owner: { contact: 'jane.doe@example.com' } }] },
      content: [{ type: 'resource', resource: { uri: 'file:///x', text: 'AKIAZ7VRSQ5TQ4BGXM2Q' } }],
      contents: [{ uri: 'file:///y', mimeType: 'text/plain', text: 'card 4111 1111 1111 1111' }],
      messages: [{ role: 'user', content: { type: 'text', text: 'call +44 20 7946 0958' } }],
    };
    const { findings, types } = scanValue(detectors, value, roomy);
    assert.deepEqual(findings.map((f) => `${f.type}@${f.path.join('.')}`).sort(), [
      'aws-access-token@content.0.resource.text',
      'email@structuredContent.rows.0.owner.contact',
      'payment-card@contents.0.text',
      'phone@messages.0.content.text',
    ]);
    assert.deepEqual([...types.secrets], ['aws-access-token']);
    assert.deepEqual([...types.pii].sort(), ['email', 'payment-card', 'phone']);
  });

  it('reads a value under a telling property name as the assignment it is', () => {
    const { findings } = scanValue(detectors, { config: { api_key: 'q8ZtV3xN5mK2pR7sW9yB4cD6' } }, roomy);
    assert.deepEqual(
      findings.map((f) => [f.type, f.start, f.end]),
      [['generic-api-key', 0, 24]],
    );
  });

  it('decodes base64 blobs of resource contents, as UTF-8 or byte for byte, and skips image data', () => {
    const secret = 'export STRIPE=sk_live_Q8ZtV3xN5mK2pR7sW9yB4cD6';
    const binary = Buffer.concat([Buffer.from([0xff, 0xfe, 0x00, 0x80]), Buffer.from(` ${secret} `)]);
    const value = {
      contents: [
        { uri: 'file:///a.env', blob: Buffer.from(secret).toString('base64') },
        { uri: 'file:///b.bin', blob: binary.toString('base64') },
      ],
      content: [{ type: 'image', mimeType: 'image/png', data: Buffer.from(secret).toString('base64') }],
    };
    const { findings } = scanValue(detectors, value, roomy);
    const stripe = findings.filter((f) => f.type === 'stripe-access-token');
    assert.deepEqual(
      stripe.map((f) => [f.path.join('.'), f.encoding, f.start]),
      [
        ['contents.0.blob', 'base64-utf8', secret.indexOf('sk_live')],
        ['contents.1.blob', 'base64-latin1', 5 + secret.indexOf('sk_live')],
      ],
    );
  });

  it('takes lone surrogates, control characters and empty strings without failing', () => {
    const odd = { a: '\ud800abc\udfff', b: '\u0000\u0001 bob@example.com \ufffd', c: '', d: [null, 1, true] };
    const { findings, boundHit } = scanValue(detectors, odd, roomy);
    assert.equal(boundHit, undefined);
    assert.deepEqual(
      findings.map((f) => f.type),
      ['email'],
    );
  });

  it('stops at the character bound and says so', () => {
    const { boundHit } = scanValue(
      detectors,
      { a: 'x'.repeat(600), b: 'y'.repeat(600) },
      { ...roomy, maxChars: 1024 },
    );
    assert.deepEqual(boundHit, { bound: 'chars', limit: 1024 });
  });

  it('stops at the depth bound and says so, without a stack overflow', () => {
    let deep: unknown = 'bob@example.com';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const { boundHit, findings } = scanValue(detectors, deep, { ...roomy, maxDepth: 128 });
    assert.deepEqual(boundHit, { bound: 'depth', limit: 128 });
    assert.deepEqual(findings, []);
  });

  it('stops at the time bound measured on the injected clock, read per slice of work rather than per string', () => {
    let clock = 0;
    let readings = 0;
    const now = () => {
      readings++;
      clock += 10;
      return clock;
    };
    const value = { rows: Array.from({ length: 5000 }, (_, i) => `row ${i}`) };
    const { boundHit } = scanValue(detectors, value, { ...roomy, maxMillis: 15, now });
    assert.deepEqual(boundHit, { bound: 'time', limit: 15 });
    assert.ok(readings < 100, `${readings} clock readings`);
  });

  it('reports a scan that ran past the time bound even when its last string finished it', () => {
    let clock = 0;
    const now = () => (clock += 10);
    const value = { a: 'first', b: 'second', c: 'third' };
    const { boundHit } = scanValue(detectors, value, { ...roomy, maxMillis: 5, now });
    assert.deepEqual(boundHit, { bound: 'time', limit: 5 });
  });

  it('gives the detected types of call arguments for the policy context', () => {
    const args = { to: 'ops@example.com', body: 'token: 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' };
    assert.deepEqual(detectedIn(detectors, args, roomy), {
      secrets: ['github-pat'],
      pii: ['email'],
      complete: true,
    });
    assert.equal(detectedIn(detectors, args, { ...roomy, maxChars: 1024, maxDepth: 0 }).complete, false);
  });
});

describe('scanning one long string', () => {
  it('finds secrets on both sides of a piece boundary, and one that straddles it', () => {
    const key = 'AKIAZ7VRSQ5TQ4BGXM2Q';
    const at = (1 << 20) - 10; // straddles the first cut
    const text = `${key} ${'x'.repeat(at - key.length - 2)} ${key} ${'y'.repeat(1 << 20)} ${key}`;
    const { findings } = scanValue(detectors, { text }, roomy);
    assert.deepEqual(
      findings.filter((f) => f.type === 'aws-access-token').map((f) => f.start),
      [0, at, text.length - key.length],
    );
  });

  it('checks the time bound between pieces of one string', () => {
    let clock = 0;
    const now = () => (clock += 10);
    const { boundHit } = scanValue(
      detectors,
      { text: 'z'.repeat(3 << 20) },
      { ...roomy, maxMillis: 25, now },
    );
    assert.deepEqual(boundHit, { bound: 'time', limit: 25 });
  });
});
