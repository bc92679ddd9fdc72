/**
 * Outgoing approval webhooks: each event is POSTed, signed in the Standard
 * Webhooks format, to every configured hook that wants its type. Deliveries
 * run in the background, one queue per hook so a hook that is down delays no
 * other; they are retried a few times and then given up, only ever logged. A
 * webhook tells people about a request; it never decides one.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { resolveValue } from '../config/secrets.ts';
import { ConfigError } from '../errors.ts';
import type { Logger } from '../observability/log.ts';
import type { ApprovalEvent, ApprovalEventType } from './types.ts';
import type { WebhookConfig, WebhookEventType } from './webhook-config.ts';
import { type WebhookFormat, webhookBody } from './webhook-payload.ts';
import { signWebhook, webhookKey } from './webhook-signature.ts';

export interface NotifierOptions {
  readonly logger: Logger;
  /** Where `file:` references are read from: the config file's folder. */
  readonly baseDir: string;
  readonly env?: NodeJS.ProcessEnv;
  /** For `webhook-timestamp`. */
  readonly now?: () => number;
  /** Waits before a retry; rejects when `signal` aborts (the notifier closing). */
  readonly delay?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Attempts per delivery, the first included. Default 3. */
  readonly attempts?: number;
  /** Deliveries waiting per hook; beyond this the oldest is dropped. Default 100. */
  readonly maxQueue?: number;
}

interface Hook {
  /** Position in the config: logs name a hook by it, since its URL may hold a token (Slack's do). */
  readonly index: number;
  readonly url: URL;
  readonly key: Buffer;
  readonly format: WebhookFormat;
  readonly events: readonly WebhookEventType[];
  readonly timeoutMs: number;
}

interface Delivery {
  readonly event: ApprovalEvent;
  /** The `webhook-id`: one per event, the same on every retry, so a receiver can drop duplicates. */
  readonly id: string;
  readonly body: string;
}

type Outcome = { ok: true; status: number } | { ok: false; retry: boolean; reason: string };

const BACKOFF_MS = 1000;

export class WebhookNotifier {
  readonly #hooks: readonly Hook[];
  readonly #queues = new Map<Hook, Delivery[]>();
  readonly #draining = new Set<Hook>();
  #idleWaiters: (() => void)[] = [];
  readonly #closing = new AbortController();
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #delay: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #attempts: number;
  readonly #maxQueue: number;

  /** Resolves every secret and URL reference now: a bad one is a start-up error, not a lost delivery. */
  constructor(config: readonly WebhookConfig[], options: NotifierOptions) {
    this.#hooks = config.map((c, index) => openHook(c, index, options));
    for (const hook of this.#hooks) this.#queues.set(hook, []);
    this.#log = options.logger;
    this.#now = options.now ?? Date.now;
    this.#delay = options.delay ?? ((ms, signal) => sleep(ms, undefined, { signal }));
    this.#attempts = Math.max(1, options.attempts ?? 3);
    this.#maxQueue = Math.max(1, options.maxQueue ?? 100);
  }

  /** Queues the event for every hook that wants it; returns at once and never throws. */
  announce(event: ApprovalEvent): void {
    try {
      if (this.#closing.signal.aborted) {
        this.#log.warn('webhook event after close: not sent', { type: event.type, event: event.id });
        return;
      }
      const wanted = this.#hooks.filter((hook) => wants(hook, event.type));
      if (wanted.length === 0) return;
      const id = `msg_${randomBytes(16).toString('base64url')}`;
      for (const hook of wanted) this.#enqueue(hook, { event, id, body: webhookBody(event, hook.format) });
    } catch (err) {
      this.#log.error('webhook event not sent', { type: event.type, event: event.id, error: reason(err) });
    }
  }

  /** Resolves when every queue is empty and no delivery is under way. */
  idle(): Promise<void> {
    if (this.#draining.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Drops what is queued, cuts short what is under way (logged), and resolves when all has stopped. */
  close(): Promise<void> {
    if (!this.#closing.signal.aborted) {
      for (const [hook, queue] of this.#queues) {
        if (queue.length > 0)
          this.#log.warn('webhook deliveries dropped at close', { hook: hook.index, dropped: queue.length });
        queue.length = 0;
      }
      this.#closing.abort();
    }
    return this.idle();
  }

  #enqueue(hook: Hook, delivery: Delivery): void {
    const queue = this.#queues.get(hook)!;
    if (queue.length >= this.#maxQueue) {
      const dropped = queue.shift()!;
      this.#log.warn('webhook queue full: oldest delivery dropped', {
        ...fields(hook, dropped),
        maxQueue: this.#maxQueue,
      });
    }
    queue.push(delivery);
    if (!this.#draining.has(hook)) void this.#drain(hook, queue);
  }

  async #drain(hook: Hook, queue: Delivery[]): Promise<void> {
    this.#draining.add(hook);
    try {
      for (let next = queue.shift(); next; next = queue.shift()) await this.#deliver(hook, next);
    } catch (err) {
      this.#log.error('webhook queue stopped', { hook: hook.index, error: reason(err) });
    } finally {
      this.#draining.delete(hook);
      if (this.#draining.size === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
    }
  }

  async #deliver(hook: Hook, delivery: Delivery): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#attempt(hook, delivery);
      if (outcome.ok) {
        this.#log.info('webhook delivered', { ...fields(hook, delivery), attempt, status: outcome.status });
        return;
      }
      const more = outcome.retry && attempt < this.#attempts && !this.#closing.signal.aborted;
      const at = { ...fields(hook, delivery), attempt, reason: outcome.reason };
      if (!more) {
        this.#log.error('webhook delivery failed', at);
        return;
      }
      this.#log.warn('webhook delivery failed, will retry', at);
      try {
        await this.#delay(BACKOFF_MS * 4 ** (attempt - 1), this.#closing.signal);
      } catch {
        this.#log.error('webhook delivery abandoned at close', at);
        return;
      }
    }
  }

  /** One signed POST; a new timestamp (and so signature) each attempt, as the spec asks. */
  async #attempt(hook: Hook, delivery: Delivery): Promise<Outcome> {
    const signed = signWebhook(hook.key, {
      id: delivery.id,
      timestamp: Math.floor(this.#now() / 1000),
      body: delivery.body,
    });
    try {
      const response = await fetch(hook.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'portcullis-webhooks', ...signed },
        body: delivery.body,
        // The spec counts a redirect as a failure: the URL should be updated instead.
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(hook.timeoutMs), this.#closing.signal]),
      });
      await response.body?.cancel();
      const { status } = response;
      if (status >= 200 && status < 300) return { ok: true, status };
      return { ok: false, retry: status >= 500 || status === 429, reason: `HTTP ${status}` };
    } catch (err) {
      return { ok: false, retry: true, reason: reason(err) };
    }
  }
}

function openHook(config: WebhookConfig, index: number, options: NotifierOptions): Hook {
  const url = URL.parse(resolveValue(config.url, options.baseDir, options.env));
  // The URL is not quoted: it may hold a token.
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    throw new ConfigError(`approvals.webhooks[${index}].url is not an http(s) URL`);
  return {
    index,
    url,
    key: webhookKey(resolveValue(config.secret, options.baseDir, options.env)),
    format: config.format,
    events: config.events,
    timeoutMs: config.timeoutMs,
  };
}

/** Typed on the domain's event type: a new event type the config cannot name fails to compile here. */
const wants = (hook: Hook, type: ApprovalEventType): boolean => hook.events.includes(type);

const fields = (hook: Hook, delivery: Delivery): Record<string, unknown> => ({
  hook: hook.index,
  target: hook.url.origin,
  type: delivery.event.type,
  event: delivery.event.id,
  delivery: delivery.id,
});

/** Why a request failed, without the URL (which may hold a token). */
function reason(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err.cause as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : err.name;
}
