import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { callbacksSchema, WEBHOOK_EVENT_TYPES, webhooksSchema } from '../../src/approval/webhook-config.ts';

const SECRET = 'env:HOOK_SECRET';

describe('the approvals.webhooks and approvals.callbacks config', () => {
  it('fills in the defaults: JSON, every event type, a 5 s timeout, and no hooks or sources at all', () => {
    assert.deepEqual(
      webhooksSchema.parse([{ url: 'https://hooks.example.test/portcullis', secret: SECRET }]),
      [
        {
          url: 'https://hooks.example.test/portcullis',
          secret: SECRET,
          format: 'json',
          events: [...WEBHOOK_EVENT_TYPES],
          timeoutMs: 5000,
        },
      ],
    );
    assert.deepEqual(webhooksSchema.parse(undefined), []);
    assert.deepEqual(callbacksSchema.parse(undefined), []);
  });

  it('takes a URL given by reference, since a Slack webhook URL is itself a secret', () => {
    const [hook] = webhooksSchema.parse([{ url: 'env:SLACK_WEBHOOK_URL', secret: SECRET, format: 'slack' }]);
    assert.equal(hook?.url, 'env:SLACK_WEBHOOK_URL');
  });

  it('refuses each malformed hook', () => {
    const good = { url: 'https://hooks.example.test/x', secret: SECRET };
    const bad: Record<string, unknown> = {
      'an ftp URL': { ...good, url: 'ftp://hooks.example.test/x' },
      'a relative URL': { ...good, url: '/hooks/x' },
      'no secret': { url: good.url },
      'an empty secret': { ...good, secret: '' },
      'an unknown format': { ...good, format: 'teams' },
      'an unknown event type': { ...good, events: ['approval.requested', 'approval.maybe'] },
      'no event type': { ...good, events: [] },
      'a repeated event type': { ...good, events: ['approval.denied', 'approval.denied'] },
      'a zero timeout': { ...good, timeoutMs: 0 },
      'an unknown key': { ...good, retries: 10 },
    };
    for (const [name, hook] of Object.entries(bad)) {
      assert.equal(webhooksSchema.safeParse([hook]).success, false, name);
    }
  });

  it('refuses a callback source with a bad name, an unknown key or a name used twice', () => {
    const bad: Record<string, unknown[]> = {
      'a colon in the name': [{ name: 'slack:ops', secret: SECRET }],
      'an upper-case name': [{ name: 'Slack', secret: SECRET }],
      'an unknown key': [{ name: 'slack', secret: SECRET, url: 'https://x.test' }],
      'a name used twice': [
        { name: 'slack', secret: SECRET },
        { name: 'slack', secret: 'env:OTHER' },
      ],
    };
    for (const [name, list] of Object.entries(bad)) {
      assert.equal(callbacksSchema.safeParse(list).success, false, name);
    }
  });
});
