import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { ApprovalEvent } from '../../src/approval/types.ts';
import { webhooksSchema } from '../../src/approval/webhook-config.ts';
import { WebhookVerifier, webhookKey } from '../../src/approval/webhook-signature.ts';
import { WebhookNotifier } from '../../src/approval/webhooks.ts';
import { PortcullisError } from '../../src/errors.ts';
import type { Logger } from '../../src/observability/log.ts';
import { MemoryRecords } from './memory-records.ts';

const SECRET = `whsec_${Buffer.alloc(32, 42).toString('base64')}`;
const NOW = 1_800_000_000_000;

/** Standard Webhooks verification written from the spec, apart from the code under test. */
function specSignatureHolds(secret: string, headers: http.IncomingHttpHeaders, body: string): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const content = `${headers['webhook-id']}.${headers['webhook-timestamp']}.${body}`;
  const expected = createHmac('sha256', key).update(content).digest();
  return String(headers['webhook-signature'] ?? '')
    .split(' ')
    .filter((s) => s.startsWith('v1,'))
    .map((s) => Buffer.from(s.slice(3), 'base64'))
    .some((sig) => sig.length === expected.length && timingSafeEqual(sig, expected));
}

interface Received {
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly status: number;
  readonly answer: string;
}

/** A webhook receiver: checks each delivery by the spec, then by our verifier (which refuses replays). */
class Receiver {
  readonly received: Received[] = [];
  readonly verifier = new WebhookVerifier({
    key: webhookKey(SECRET),
    nonces: new MemoryRecords(),
    scope: 'receiver',
    now: () => NOW,
  });
  /** `/flaky` answers 500 this many more times. */
  flakyFailures = 0;
  /** `/hold` answers only once this is released. */
  #release!: () => void;
  held = new Promise<void>((resolve) => {
    this.#release = resolve;
  });
  readonly server = http.createServer((req, res) => void this.#handle(req, res));
  base = '';

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  release(): void {
    this.#release();
  }

  of(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const path = req.url ?? '';
    if (path === '/hold') await this.held;
    const [status, answer] = await this.#judge(path, req.headers, body);
    this.received.push({ path, headers: req.headers, body, status, answer });
    res.writeHead(status).end(answer);
  }

  async #judge(path: string, headers: http.IncomingHttpHeaders, body: string): Promise<[number, string]> {
    if (path === '/flaky' && this.flakyFailures-- > 0) return [500, 'try later'];
    if (!specSignatureHolds(SECRET, headers, body)) return [401, 'bad signature by the spec'];
    try {
      await this.verifier.verify(headers, body);
      return [204, ''];
    } catch (err) {
      if (err instanceof PortcullisError) return [err.httpStatus, err.code];
      throw err;
    }
  }
}

interface Line {
  readonly level: string;
  readonly msg: string;
  readonly fields: Record<string, unknown>;
}

function recordingLogger(): Logger & { lines: Line[] } {
  const lines: Line[] = [];
  const at =
    (level: string) =>
    (msg: string, fields: Record<string, unknown> = {}) =>
      lines.push({ level, msg, fields });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

const requested = (id: string, summary = 'alice wants fs__write_file'): ApprovalEvent => ({
  type: 'approval.requested',
  time: NOW,
  id,
  summary,
  data: { tool: 'fs__write_file', principal: 'alice', required: 1, expiresAt: NOW + 300_000 },
});

function notifier(hooks: unknown[], extra: { delays?: number[]; maxQueue?: number } = {}) {
  const logger = recordingLogger();
  const n = new WebhookNotifier(webhooksSchema.parse(hooks), {
    logger,
    baseDir: '/nonexistent',
    env: {},
    now: () => NOW,
    delay: async (ms) => {
      extra.delays?.push(ms);
    },
    ...(extra.maxQueue ? { maxQueue: extra.maxQueue } : {}),
  });
  return { n, logger };
}

/** Sends a captured delivery again, byte for byte. */
async function replay(url: string, delivery: Received): Promise<{ status: number; text: string }> {
  const pick = (name: string) => String(delivery.headers[name]);
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'webhook-id': pick('webhook-id'),
      'webhook-timestamp': pick('webhook-timestamp'),
      'webhook-signature': pick('webhook-signature'),
    },
    body: delivery.body,
  });
  return { status: response.status, text: await response.text() };
}

async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('approval webhooks', () => {
  const receiver = new Receiver();
  before(() => receiver.start());
  after(() => {
    receiver.release();
    receiver.server.closeAllConnections();
    receiver.server.close();
  });

  it('POSTs each event signed so a check written from the spec accepts it, and the receiver refuses a replay of it', async () => {
    const { n } = notifier([{ url: `${receiver.base}/json`, secret: SECRET }]);
    const event = requested('apr_json');
    n.announce(event);
    await n.idle();
    const [delivery] = receiver.of('/json');
    assert.ok(delivery);
    assert.equal(delivery.status, 204, delivery.answer);
    assert.equal(delivery.headers['content-type'], 'application/json');
    assert.equal(delivery.headers['webhook-timestamp'], String(NOW / 1000));
    assert.match(String(delivery.headers['webhook-id']), /^msg_[A-Za-z0-9_-]{22}$/);
    assert.deepEqual(JSON.parse(delivery.body), event);

    const again = await replay(`${receiver.base}/json`, delivery);
    assert.deepEqual(again, { status: 409, text: 'ERR_WEBHOOK_REPLAYED' });
  });

  it('sends a Slack message that summarises the request and carries the approve and deny commands', async () => {
    const { n } = notifier([{ url: `${receiver.base}/slack`, secret: SECRET, format: 'slack' }]);
    n.announce(requested('apr_slack', 'alice <@here> wants fs__write_file & more'));
    await n.idle();
    const [delivery] = receiver.of('/slack');
    assert.ok(delivery);
    assert.equal(delivery.status, 204, delivery.answer);
    const message = JSON.parse(delivery.body) as { text: string; blocks: Record<string, unknown>[] };
    assert.equal(message.text, 'Approval requested: alice &lt;@here&gt; wants fs__write_file &amp; more');
    assert.deepEqual(
      message.blocks.map((b) => b.type),
      ['header', 'section', 'section', 'section', 'context'],
    );
    const all = JSON.stringify(message.blocks);
    assert.ok(all.includes('`portcullis approvals approve apr_slack`'), all);
    assert.ok(all.includes('`portcullis approvals deny apr_slack`'), all);
    assert.ok(all.includes('*Tool*\\nfs__write_file'), all);
    assert.ok(all.includes(new Date(NOW + 300_000).toISOString()), all);
    assert.ok(!all.includes('<@here>'), 'a mention in the summary is escaped');
  });

  it('retries a hook that answers 500 and delivers on the next attempt, with the same webhook-id', async () => {
    const delays: number[] = [];
    const { n, logger } = notifier([{ url: `${receiver.base}/flaky`, secret: SECRET }], { delays });
    receiver.flakyFailures = 1;
    n.announce(requested('apr_flaky'));
    await n.idle();
    const attempts = receiver.of('/flaky');
    assert.deepEqual(
      attempts.map((a) => a.status),
      [500, 204],
    );
    assert.equal(attempts[0]!.headers['webhook-id'], attempts[1]!.headers['webhook-id']);
    assert.deepEqual(delays, [1000]);
    assert.deepEqual(
      logger.lines.map((l) => [l.level, l.msg, l.fields.attempt, l.fields.reason ?? l.fields.status]),
      [
        ['warn', 'webhook delivery failed, will retry', 1, 'HTTP 500'],
        ['info', 'webhook delivered', 2, 204],
      ],
    );
  });

  it('does not retry a hook that refuses the delivery with a 4xx', async () => {
    const { n, logger } = notifier([{ url: `${receiver.base}/json`, secret: 'not the receiver secret 123' }]);
    n.announce(requested('apr_refused'));
    await n.idle();
    assert.deepEqual(
      logger.lines.map((l) => [l.level, l.msg, l.fields.attempt, l.fields.reason]),
      [['error', 'webhook delivery failed', 1, 'HTTP 401']],
    );
  });

  it('gives up on a hook that is down after its attempts, logging without throwing, and still serves the others', async () => {
    const delays: number[] = [];
    const down = `http://127.0.0.1:${await closedPort()}/down`;
    const { n, logger } = notifier(
      [
        { url: down, secret: SECRET },
        { url: `${receiver.base}/beside-down`, secret: SECRET },
      ],
      { delays },
    );
    assert.doesNotThrow(() => n.announce(requested('apr_down')));
    await n.idle();
    assert.equal(receiver.of('/beside-down').length, 1);
    assert.deepEqual(delays, [1000, 4000]);
    const failures = logger.lines.filter((l) => l.fields.hook === 0);
    assert.deepEqual(
      failures.map((l) => [l.level, l.fields.attempt, l.fields.reason]),
      [
        ['warn', 1, 'ECONNREFUSED'],
        ['warn', 2, 'ECONNREFUSED'],
        ['error', 3, 'ECONNREFUSED'],
      ],
    );
    assert.ok(
      failures.every((l) => l.fields.target === new URL(down).origin && !JSON.stringify(l).includes('/down')),
    );
  });

  it('sends a hook only the event types it asks for', async () => {
    const { n } = notifier([
      { url: `${receiver.base}/requests-only`, secret: SECRET, events: ['approval.requested'] },
      { url: `${receiver.base}/everything`, secret: SECRET },
    ]);
    n.announce({ ...requested('apr_granted'), type: 'approval.granted', summary: 'bob granted it' });
    n.announce(requested('apr_wanted'));
    await n.idle();
    assert.deepEqual(
      receiver.of('/requests-only').map((r) => JSON.parse(r.body).id),
      ['apr_wanted'],
    );
    assert.deepEqual(
      receiver.of('/everything').map((r) => JSON.parse(r.body).id),
      ['apr_granted', 'apr_wanted'],
    );
  });

  it('drops the oldest waiting delivery beyond the queue bound, and logs it', async () => {
    const { n, logger } = notifier([{ url: `${receiver.base}/hold`, secret: SECRET }], { maxQueue: 2 });
    for (const id of ['apr_1', 'apr_2', 'apr_3', 'apr_4']) n.announce(requested(id));
    receiver.release();
    await n.idle();
    assert.deepEqual(
      receiver.of('/hold').map((r) => JSON.parse(r.body).id),
      ['apr_1', 'apr_3', 'apr_4'],
    );
    const drops = logger.lines.filter((l) => l.msg === 'webhook queue full: oldest delivery dropped');
    assert.deepEqual(
      drops.map((l) => l.fields.event),
      ['apr_2'],
    );
  });

  it('logs and skips an event it cannot serialise, and keeps announcing', async () => {
    const { n, logger } = notifier([{ url: `${receiver.base}/after-bad`, secret: SECRET }]);
    assert.doesNotThrow(() => n.announce({ ...requested('apr_bad'), data: { big: 1n } }));
    n.announce(requested('apr_good'));
    await n.idle();
    assert.deepEqual(
      receiver.of('/after-bad').map((r) => JSON.parse(r.body).id),
      ['apr_good'],
    );
    assert.deepEqual(
      logger.lines.filter((l) => l.level === 'error').map((l) => [l.msg, l.fields.event]),
      [['webhook event not sent', 'apr_bad']],
    );
  });

  it('resolves the URL and secret references at start-up, and refuses a bad one there', async () => {
    const hooks = webhooksSchema.parse([{ url: 'env:HOOK_URL', secret: 'env:HOOK_SECRET' }]);
    const options = { logger: recordingLogger(), baseDir: '/nonexistent' };
    const n = new WebhookNotifier(hooks, {
      ...options,
      env: { HOOK_URL: `${receiver.base}/from-env`, HOOK_SECRET: SECRET },
      now: () => NOW,
    });
    n.announce(requested('apr_env'));
    await n.idle();
    assert.equal(receiver.of('/from-env')[0]?.status, 204);

    const refusals: [Record<string, string>, string][] = [
      [{ HOOK_SECRET: SECRET }, 'ERR_SECRET_UNRESOLVED'],
      [{ HOOK_URL: 'ftp://example.test/hook', HOOK_SECRET: SECRET }, 'ERR_CONFIG_INVALID'],
      [{ HOOK_URL: 'not a url', HOOK_SECRET: SECRET }, 'ERR_CONFIG_INVALID'],
      [{ HOOK_URL: `${receiver.base}/x`, HOOK_SECRET: 'short' }, 'ERR_CONFIG_INVALID'],
    ];
    for (const [env, code] of refusals) {
      assert.throws(() => new WebhookNotifier(hooks, { ...options, env }), { code }, JSON.stringify(env));
    }
  });

  it('on close drops what waits, cuts short what is under way, and sends nothing more', async () => {
    receiver.held = new Promise(() => {});
    const { n, logger } = notifier([{ url: `${receiver.base}/hold`, secret: SECRET }]);
    const before = receiver.of('/hold').length;
    n.announce(requested('apr_cut'));
    n.announce(requested('apr_waiting'));
    await n.close();
    n.announce(requested('apr_late'));
    await n.idle();
    assert.equal(receiver.of('/hold').length, before);
    assert.deepEqual(
      logger.lines.map((l) => [l.level, l.msg]),
      [
        ['warn', 'webhook deliveries dropped at close'],
        ['error', 'webhook delivery failed'],
        ['warn', 'webhook event after close: not sent'],
      ],
    );
  });
});
