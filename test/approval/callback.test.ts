import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type CallbackVerifiers, callbackVerifiers, verifyCallback } from '../../src/approval/callback.ts';
import { callbacksSchema } from '../../src/approval/webhook-config.ts';
import { signWebhook, WEBHOOK_TOLERANCE_MS, webhookKey } from '../../src/approval/webhook-signature.ts';
import { PortcullisError } from '../../src/errors.ts';
import { MemoryRecords } from './memory-records.ts';

const SLACK_SECRET = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;
const CONSOLE_SECRET = 'the console shares this plain secret';
const NOW = 1_800_000_000_000;

const sources = callbacksSchema.parse([
  { name: 'slack', secret: 'env:SLACK_CALLBACK_SECRET' },
  { name: 'console', secret: CONSOLE_SECRET },
]);

function verifiers(now = () => NOW): CallbackVerifiers {
  return callbackVerifiers(sources, {
    baseDir: '/nonexistent',
    nonces: new MemoryRecords(),
    env: { SLACK_CALLBACK_SECRET: SLACK_SECRET },
    now,
  });
}

let counter = 0;

/** A callback as the chat bot sends it: a fresh id each, signed with `secret` at `at` (ms). */
function callback(body: unknown, secret = SLACK_SECRET, at = NOW, id = `msg_cb${++counter}`) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return {
    source: 'slack',
    headers: signWebhook(webhookKey(secret), { id, timestamp: Math.floor(at / 1000), body: text }),
    body: text,
  };
}

const DECISION = { approvalId: 'apr_1', decision: 'approve', approver: 'U024BE7LH', comment: 'ok for today' };

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (err) {
    assert.ok(err instanceof PortcullisError, String(err));
    return err.code;
  }
}

describe('approval callbacks', () => {
  it('reads a signed decision and names the approver by source and user', async () => {
    assert.deepEqual(await verifyCallback(verifiers(), callback(DECISION)), {
      source: 'slack',
      approvalId: 'apr_1',
      decision: 'approve',
      approver: 'webhook:slack:U024BE7LH',
      comment: 'ok for today',
    });
    const { comment: _, ...bare } = DECISION;
    const denial = await verifyCallback(verifiers(), callback({ ...bare, decision: 'deny' }));
    assert.equal(denial.decision, 'deny');
    assert.equal(denial.comment, '');
  });

  it('verifies each source with its own secret, a plain one or a whsec_ one read from a reference', async () => {
    const v = verifiers();
    const fromConsole = { ...callback(DECISION, CONSOLE_SECRET), source: 'console' };
    assert.equal((await verifyCallback(v, fromConsole)).approver, 'webhook:console:U024BE7LH');
    const slackSignedForConsole = { ...callback(DECISION, SLACK_SECRET), source: 'console' };
    assert.equal(await codeOf(verifyCallback(v, slackSignedForConsole)), 'ERR_WEBHOOK_SIGNATURE');
  });

  it('refuses a forged signature, and an unknown source alike, with ERR_WEBHOOK_SIGNATURE', async () => {
    const forged = callback(DECISION, `whsec_${Buffer.alloc(32, 2).toString('base64')}`);
    assert.equal(await codeOf(verifyCallback(verifiers(), forged)), 'ERR_WEBHOOK_SIGNATURE');
    const unknown = { ...callback(DECISION), source: 'teams' };
    assert.equal(await codeOf(verifyCallback(verifiers(), unknown)), 'ERR_WEBHOOK_SIGNATURE');
  });

  it('refuses a decision signed longer ago than the tolerance with ERR_WEBHOOK_STALE', async () => {
    let now = NOW;
    const v = verifiers(() => now);
    const message = callback(DECISION);
    now = NOW + WEBHOOK_TOLERANCE_MS + 1000;
    assert.equal(await codeOf(verifyCallback(v, message)), 'ERR_WEBHOOK_STALE');
  });

  it('refuses a replayed decision with ERR_WEBHOOK_REPLAYED', async () => {
    const v = verifiers();
    const message = callback(DECISION);
    assert.equal(await codeOf(verifyCallback(v, message)), 'accepted');
    assert.equal(await codeOf(verifyCallback(v, message)), 'ERR_WEBHOOK_REPLAYED');
  });

  it('refuses a signed body that is not a decision with ERR_WEBHOOK_BAD_BODY', async () => {
    const bodies: Record<string, unknown> = {
      'not JSON': '{"approvalId":',
      'an array': [DECISION],
      'no approval id': { ...DECISION, approvalId: undefined },
      'an empty approver': { ...DECISION, approver: '' },
      'an unknown decision': { ...DECISION, decision: 'maybe' },
      'an extra field': { ...DECISION, approvers: ['a', 'b'] },
      'a control character': { ...DECISION, approver: 'mallory\nadmin' },
      'a number for a string': { ...DECISION, approvalId: 7 },
    };
    const v = verifiers();
    for (const [name, body] of Object.entries(bodies)) {
      assert.equal(await codeOf(verifyCallback(v, callback(body))), 'ERR_WEBHOOK_BAD_BODY', name);
    }
    const invalidUtf8 = callback('{}');
    const bytes = Buffer.from([0x7b, 0xff, 0x7d]);
    const signed = signWebhook(webhookKey(SLACK_SECRET), {
      id: 'msg_bytes',
      timestamp: NOW / 1000,
      body: bytes,
    });
    assert.equal(
      await codeOf(verifyCallback(v, { ...invalidUtf8, headers: signed, body: bytes })),
      'ERR_WEBHOOK_BAD_BODY',
    );
  });

  it('reads a secret from a file reference, and fails at start-up on one that does not resolve', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-callback-'));
    writeFileSync(join(dir, 'secret'), `${SLACK_SECRET}\n`);
    const fromFile = callbacksSchema.parse([{ name: 'bot', secret: 'file:secret' }]);
    const made = callbackVerifiers(fromFile, { baseDir: dir, nonces: new MemoryRecords(), now: () => NOW });
    const message = { ...callback(DECISION), source: 'bot' };
    assert.equal((await verifyCallback(made, message)).approver, 'webhook:bot:U024BE7LH');
    assert.throws(() => callbackVerifiers(sources, { baseDir: dir, nonces: new MemoryRecords(), env: {} }), {
      code: 'ERR_SECRET_UNRESOLVED',
    });
  });
});
