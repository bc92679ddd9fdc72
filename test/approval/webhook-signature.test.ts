import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  type IncomingHeaders,
  signWebhook,
  WEBHOOK_TOLERANCE_MS,
  WebhookVerifier,
  webhookKey,
} from '../../src/approval/webhook-signature.ts';
import { PortcullisError } from '../../src/errors.ts';
import { MemoryRecords } from './memory-records.ts';

/** The Standard Webhooks reference libraries' test vector. */
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

const KEY = webhookKey(VECTOR.secret);
const NOW = 1_800_000_000_000;
const SECONDS = NOW / 1000;
const BODY = '{"hello":"world"}';

function verifier(nonces = new MemoryRecords(), now = () => NOW): WebhookVerifier {
  return new WebhookVerifier({ key: KEY, nonces, scope: 'test', now });
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (err) {
    assert.ok(err instanceof PortcullisError, String(err));
    return err.code;
  }
}

const signed = (id: string, timestamp = SECONDS, body = BODY): IncomingHeaders =>
  signWebhook(KEY, { id, timestamp, body });

describe('Standard Webhooks signatures', () => {
  it('signs the reference test vector as the spec’s libraries do', () => {
    const headers = signWebhook(webhookKey(VECTOR.secret), VECTOR);
    assert.deepEqual(headers, {
      'webhook-id': VECTOR.id,
      'webhook-timestamp': String(VECTOR.timestamp),
      'webhook-signature': VECTOR.signature,
    });
  });

  it('uses a secret without the whsec_ prefix as its own bytes, and refuses one shorter than 24 bytes', () => {
    const raw = 'a plain shared secret of 32 chars';
    const expected = createHmac('sha256', raw).update(`id1.${SECONDS}.${BODY}`).digest('base64');
    assert.equal(
      signWebhook(webhookKey(raw), { id: 'id1', timestamp: SECONDS, body: BODY })['webhook-signature'],
      `v1,${expected}`,
    );
    for (const short of ['too short', 'whsec_c2hvcnQ=']) {
      assert.throws(() => webhookKey(short), { code: 'ERR_CONFIG_INVALID' });
    }
  });

  it('accepts a message when any one of several space-separated signatures matches', async () => {
    const good = signed('msg_several')['webhook-signature'] as string;
    const headers = {
      ...signed('msg_several'),
      'webhook-signature': `v1a,AAAA v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= ${good} v2,${good.slice(3)}`,
    };
    assert.deepEqual(await verifier().verify(headers, BODY), { id: 'msg_several', timestamp: SECONDS });
  });

  it('accepts the body as bytes exactly as it accepts it as text', async () => {
    assert.equal(await codeOf(verifier().verify(signed('msg_bytes'), Buffer.from(BODY))), 'accepted');
  });

  it('refuses every signature defect with ERR_WEBHOOK_SIGNATURE', async () => {
    const good = signed('msg_x');
    const other = webhookKey(`whsec_${Buffer.alloc(32, 7).toString('base64')}`);
    const cases: Record<string, [IncomingHeaders, string]> = {
      'tampered body': [good, '{"hello":"World"}'],
      'another key': [signWebhook(other, { id: 'msg_x', timestamp: SECONDS, body: BODY }), BODY],
      'changed id': [{ ...good, 'webhook-id': 'msg_y' }, BODY],
      'changed timestamp': [{ ...good, 'webhook-timestamp': String(SECONDS + 1) }, BODY],
      'truncated signature': [
        { ...good, 'webhook-signature': String(good['webhook-signature']).slice(0, 20) },
        BODY,
      ],
      'empty signature': [{ ...good, 'webhook-signature': 'v1,' }, BODY],
      'only another scheme': [
        { ...good, 'webhook-signature': `v1a,${String(good['webhook-signature']).slice(3)}` },
        BODY,
      ],
      'no id': [{ ...good, 'webhook-id': undefined }, BODY],
      'no timestamp': [{ ...good, 'webhook-timestamp': undefined }, BODY],
      'no signature': [{ ...good, 'webhook-signature': undefined }, BODY],
      'repeated id header': [{ ...good, 'webhook-id': ['msg_x', 'msg_x'] }, BODY],
      'timestamp not in seconds': [{ ...good, 'webhook-timestamp': '2027-01-15T08:00:00Z' }, BODY],
      'id with a dot': [signed('msg.x'), BODY],
    };
    for (const [name, [headers, body]] of Object.entries(cases)) {
      assert.equal(await codeOf(verifier().verify(headers, body)), 'ERR_WEBHOOK_SIGNATURE', name);
    }
  });

  it('refuses a timestamp beyond the tolerance either way with ERR_WEBHOOK_STALE, and takes one at its edge', async () => {
    const tolerance = WEBHOOK_TOLERANCE_MS / 1000;
    assert.equal(
      await codeOf(verifier().verify(signed('a', SECONDS - tolerance - 1), BODY)),
      'ERR_WEBHOOK_STALE',
    );
    assert.equal(
      await codeOf(verifier().verify(signed('b', SECONDS + tolerance + 1), BODY)),
      'ERR_WEBHOOK_STALE',
    );
    assert.equal(await codeOf(verifier().verify(signed('c', SECONDS - tolerance), BODY)), 'accepted');
    assert.equal(await codeOf(verifier().verify(signed('d', SECONDS + tolerance), BODY)), 'accepted');
  });

  it('refuses a second use of an id with ERR_WEBHOOK_REPLAYED, keeping the id until the timestamp goes stale', async () => {
    const nonces = new MemoryRecords();
    const v = verifier(nonces);
    assert.equal(await codeOf(v.verify(signed('msg_once'), BODY)), 'accepted');
    assert.equal(await codeOf(v.verify(signed('msg_once'), BODY)), 'ERR_WEBHOOK_REPLAYED');
    const stored = await nonces.get('nonce', 'test:msg_once');
    assert.equal(stored?.expiresAt, NOW + WEBHOOK_TOLERANCE_MS);
    assert.equal(stored?.createdAt, NOW);
  });

  it('refuses the replay on another replica sharing the store', async () => {
    const nonces = new MemoryRecords();
    assert.equal(await codeOf(verifier(nonces).verify(signed('msg_shared'), BODY)), 'accepted');
    assert.equal(await codeOf(verifier(nonces).verify(signed('msg_shared'), BODY)), 'ERR_WEBHOOK_REPLAYED');
  });

  it('spends no id on a forged or stale message, so the genuine one still passes', async () => {
    const nonces = new MemoryRecords();
    const v = verifier(nonces);
    const forged = {
      ...signed('msg_target'),
      'webhook-signature': `v1,${Buffer.alloc(32).toString('base64')}`,
    };
    assert.equal(await codeOf(v.verify(forged, BODY)), 'ERR_WEBHOOK_SIGNATURE');
    assert.equal(await codeOf(v.verify(signed('msg_target', SECONDS - 3600), BODY)), 'ERR_WEBHOOK_STALE');
    assert.equal(nonces.records.size, 0);
    assert.equal(await codeOf(v.verify(signed('msg_target'), BODY)), 'accepted');
  });

  it('keeps the ids of different senders apart', async () => {
    const nonces = new MemoryRecords();
    const a = new WebhookVerifier({ key: KEY, nonces, scope: 'a', now: () => NOW });
    const b = new WebhookVerifier({ key: KEY, nonces, scope: 'b', now: () => NOW });
    assert.equal(await codeOf(a.verify(signed('msg_1'), BODY)), 'accepted');
    assert.equal(await codeOf(b.verify(signed('msg_1'), BODY)), 'accepted');
  });

  it('fails closed with ERR_STATE_UNAVAILABLE when used ids cannot be recorded', async () => {
    const nonces = new MemoryRecords();
    nonces.down = true;
    assert.equal(await codeOf(verifier(nonces).verify(signed('msg_down'), BODY)), 'ERR_STATE_UNAVAILABLE');
  });
});
