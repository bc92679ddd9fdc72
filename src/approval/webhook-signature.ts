/**
 * Standard Webhooks (https://www.standardwebhooks.com/), symmetric scheme:
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "${id}.${timestamp}.${body}">`,
 * several space-separated signatures allowed (a sender rotating its secret).
 * The verifier also keeps each `webhook-id` as a nonce record, so a captured
 * message replayed within the timestamp tolerance is refused.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ConfigError, PortcullisError } from '../errors.ts';
import type { RecordStore } from '../state/records.ts';

export const WEBHOOK_TOLERANCE_MS = 5 * 60_000;

/** The spec asks for at least 24 random bytes. */
const MIN_KEY_BYTES = 24;
const PREFIX = 'whsec_';
/** No `.`: the signed content is dot-delimited, so an id with one could shift the timestamp into the id. */
const ID = /^[\x21-\x2d\x2f-\x7e]{1,256}$/;
const TIMESTAMP = /^[0-9]{1,12}$/;

/** A type, not an interface, so it passes where any header record is taken. */
export type SignedHeaders = {
  readonly 'webhook-id': string;
  readonly 'webhook-timestamp': string;
  readonly 'webhook-signature': string;
};

/** Header names in lower case, as node:http gives them. */
export type IncomingHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

/**
 * The HMAC key of a secret: `whsec_<base64>` is decoded as the spec serialises
 * it; any other string is used as its own UTF-8 bytes. Too short a key is a
 * config error, raised at start-up.
 */
export function webhookKey(secret: string): Buffer {
  const key = secret.startsWith(PREFIX)
    ? Buffer.from(secret.slice(PREFIX.length), 'base64')
    : Buffer.from(secret, 'utf8');
  if (key.length < MIN_KEY_BYTES)
    throw new ConfigError(`a webhook secret must hold at least ${MIN_KEY_BYTES} bytes`);
  return key;
}

const mac = (key: Buffer, id: string, timestamp: string, body: string | Uint8Array): Buffer =>
  createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest();

/** The three headers for one delivery attempt; `timestamp` in unix seconds. */
export function signWebhook(
  key: Buffer,
  message: { id: string; timestamp: number; body: string | Uint8Array },
): SignedHeaders {
  const timestamp = String(message.timestamp);
  return {
    'webhook-id': message.id,
    'webhook-timestamp': timestamp,
    'webhook-signature': `v1,${mac(key, message.id, timestamp, message.body).toString('base64')}`,
  };
}

export interface VerifierOptions {
  readonly key: Buffer;
  /** Where used ids are kept (kind `nonce`); shared by replicas, so a replay to another one is refused too. */
  readonly nonces: RecordStore;
  /** Names the sender in nonce ids, so two senders' ids never collide. */
  readonly scope: string;
  readonly toleranceMs?: number;
  readonly now?: () => number;
}

export interface VerifiedMessage {
  readonly id: string;
  /** Unix seconds, as signed. */
  readonly timestamp: number;
}

export class WebhookVerifier {
  readonly #key: Buffer;
  readonly #nonces: RecordStore;
  readonly #scope: string;
  readonly #toleranceMs: number;
  readonly #now: () => number;

  constructor(options: VerifierOptions) {
    this.#key = options.key;
    this.#nonces = options.nonces;
    this.#scope = options.scope;
    this.#toleranceMs = options.toleranceMs ?? WEBHOOK_TOLERANCE_MS;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Checks the signature, then the timestamp, then records the id: a forged
   * or stale message never uses up an id, and a refusal names its own code.
   * A nonce store that cannot answer throws `ERR_STATE_UNAVAILABLE`.
   */
  async verify(headers: IncomingHeaders, body: string | Uint8Array): Promise<VerifiedMessage> {
    const id = single(headers, 'webhook-id');
    const timestamp = single(headers, 'webhook-timestamp');
    const signatures = single(headers, 'webhook-signature');
    if (!ID.test(id)) throw refused('ERR_WEBHOOK_SIGNATURE', 'malformed webhook-id');
    if (!TIMESTAMP.test(timestamp)) throw refused('ERR_WEBHOOK_SIGNATURE', 'malformed webhook-timestamp');
    if (!matchesAny(mac(this.#key, id, timestamp, body), signatures))
      throw refused('ERR_WEBHOOK_SIGNATURE', 'no signature matches', { id });
    const signedAt = Number(timestamp) * 1000;
    const now = this.#now();
    if (Math.abs(now - signedAt) > this.#toleranceMs)
      throw refused('ERR_WEBHOOK_STALE', 'webhook-timestamp is outside the tolerance', {
        id,
        skewMs: now - signedAt,
      });
    const fresh = await this.#nonces.insert({
      kind: 'nonce',
      id: `${this.#scope}:${id}`,
      status: 'used',
      matchKey: this.#scope,
      createdAt: now,
      // Past this the timestamp check refuses the message anyway, so the nonce may go.
      expiresAt: signedAt + this.#toleranceMs,
      body: {},
    });
    if (!fresh) throw refused('ERR_WEBHOOK_REPLAYED', 'webhook-id already used', { id });
    return { id, timestamp: Number(timestamp) };
  }
}

function single(headers: IncomingHeaders, name: keyof SignedHeaders): string {
  const value = headers[name];
  if (typeof value !== 'string' || value === '')
    throw refused('ERR_WEBHOOK_SIGNATURE', `missing or repeated ${name} header`);
  return value;
}

/** Compares in constant time against every `v1` entry; entries of other schemes are skipped. */
function matchesAny(expected: Buffer, header: string): boolean {
  let found = false;
  for (const entry of header.split(' ')) {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== 'v1') continue;
    const given = Buffer.from(entry.slice(comma + 1), 'base64');
    if (given.length === expected.length && timingSafeEqual(given, expected)) found = true;
  }
  return found;
}

const refused = (
  code: 'ERR_WEBHOOK_SIGNATURE' | 'ERR_WEBHOOK_STALE' | 'ERR_WEBHOOK_REPLAYED',
  why: string,
  detail: Record<string, unknown> = {},
): PortcullisError => new PortcullisError(code, `Webhook refused: ${why}`, { detail });
