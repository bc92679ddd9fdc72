import { createHash } from 'node:crypto';
import { resolveValue } from '../config/secrets.ts';
import { ConfigError, PortcullisError } from '../errors.ts';
import type { IdentityConfig } from '../identity/config.ts';
import { createFormPoster, type FormPoster } from '../identity/fetch.ts';
import type { TokenExchangeConfig } from './config.ts';
import { checkExchangeAnswer, type ExchangedToken, TOKEN_TYPE } from './token-exchange-answer.ts';
import type { Credential, CredentialBackend, CredentialRequest, Issued, Lease } from './types.ts';

const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** Exchanged tokens held at once; past it the oldest go first (each is re-fetched when next needed). */
const MAX_CACHED = 10_000;

export interface TokenExchangeOptions {
  readonly config: TokenExchangeConfig;
  /** The client secret itself: the config holds only its reference. */
  readonly clientSecret: string;
  /** POSTs through the outbound fetch guard: `createFormPoster(identity.fetch)`. */
  readonly post: FormPoster;
  readonly now: () => number;
}

export interface TokenExchangeWiring {
  /** The upstream's name, for the config error. */
  readonly upstream: string;
  /** The gateway's identity config: its outbound fetch guard is the one the token request goes through. */
  readonly identity: IdentityConfig;
  /** Where `file:` secret references are resolved from (the config file's folder). */
  readonly baseDir: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly now: () => number;
}

/**
 * The backend for one upstream's config, as the gateway wires it: the client
 * secret resolved now (a missing one stops the start), the token request
 * under `identity.fetch`. An open gateway has no caller tokens to exchange,
 * so there the config is refused rather than every call denied.
 */
export function createTokenExchangeBackend(
  config: TokenExchangeConfig,
  wiring: TokenExchangeWiring,
): TokenExchangeBackend {
  if (wiring.identity.mode !== 'token')
    throw new ConfigError(
      'token-exchange credentials need identity.mode: token (callers with bearer tokens)',
      [{ path: 'credentials.kind', message: 'token-exchange needs identity.mode: token' }],
    );
  return new TokenExchangeBackend({
    config,
    clientSecret: resolveValue(config.clientSecret, wiring.baseDir, wiring.env),
    post: createFormPoster(wiring.identity.fetch),
    now: wiring.now,
  });
}

interface Cached extends ExchangedToken {
  /** Names the token in a lease's handle without holding it. */
  readonly tokenId: string;
}

/**
 * RFC 8693 token exchange on behalf of the caller: its verified bearer token
 * is the subject token, the gateway authenticates as an OAuth client
 * (client_secret_basic), and what comes back is restricted to the upstream's
 * audience. One token serves a caller's subject token, upstream and scope until
 * `refreshSkewSeconds` before it expires. Any failure is a typed refusal and
 * the call is denied: there is no fallback credential.
 */
export class TokenExchangeBackend implements CredentialBackend {
  readonly kind = 'token-exchange';
  readonly granularity = 'principal' as const;
  readonly boundToSubjectToken = true;
  private readonly cache = new Map<string, Cached>();
  private readonly inflight = new Map<string, Promise<Cached>>();
  private readonly opts: TokenExchangeOptions;
  private readonly clientAuth: string;

  constructor(opts: TokenExchangeOptions) {
    this.opts = opts;
    this.clientAuth = basicAuth(opts.config.clientId, opts.clientSecret);
  }

  async issue(req: CredentialRequest, leaseId: string): Promise<Issued> {
    // Only a caller that came with a token is served, even from the cache.
    if (!req.subjectToken)
      throw new PortcullisError(
        'ERR_TOKEN_EXCHANGE_DENIED',
        'token exchange: the caller has no subject token',
        {
          detail: { reason: 'no_subject_token', upstream: req.upstream },
        },
      );
    const key = cacheKey(req.principal, req.upstream, this.scope, req.subjectToken);
    const now = this.opts.now();
    const cached = this.cache.get(key);
    const fresh = cached && now < cached.expiresAt - this.opts.config.refreshSkewSeconds * 1000;
    const token = fresh ? cached : await this.exchangeOnce(key, req.subjectToken, req.upstream, now);
    return { lease: this.leaseFor(req, leaseId, token, now), credential: this.credentialOf(token) };
  }

  /** Forgets the token the lease was handed, so the next call exchanges anew; a newer token for the same key stays. */
  async revoke(lease: Lease): Promise<void> {
    for (const [key, token] of this.cache)
      if (token.tokenId === lease.handle?.tokenId) this.cache.delete(key);
  }

  async close(): Promise<void> {
    this.cache.clear();
  }

  private get scope(): string {
    return this.opts.config.scope ?? '';
  }

  /** Concurrent calls of one caller share one exchange rather than each asking the server. */
  private exchangeOnce(key: string, subjectToken: string, upstream: string, now: number): Promise<Cached> {
    let pending = this.inflight.get(key);
    if (!pending) {
      this.cache.delete(key);
      pending = this.exchange(subjectToken, upstream, now)
        .then((token) => {
          this.remember(key, token, now);
          return token;
        })
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }

  /** One exchange, bounded by `timeoutMs` alone: callers share it, so no one caller's cancellation ends it. */
  private async exchange(subjectToken: string, upstream: string, now: number): Promise<Cached> {
    const cfg = this.opts.config;
    const signal = AbortSignal.timeout(cfg.timeoutMs);
    const answer = await this.opts
      .post(cfg.tokenEndpoint, { form: this.formFor(subjectToken), authorization: this.clientAuth, signal })
      .catch((err: unknown) => {
        throw unavailable(signal.aborted ? 'timeout' : reasonOf(err), upstream, err);
      });
    if (answer.status !== 200) throw refusedByServer(answer.status, answer.json, upstream);
    const asked = {
      audience: cfg.audience,
      maxTtlSeconds: cfg.maxTtlSeconds,
      ...(cfg.scope ? { scope: cfg.scope } : {}),
    };
    const token = checkExchangeAnswer(answer.json, asked, now);
    return { ...token, tokenId: createHash('sha256').update(token.accessToken).digest('hex').slice(0, 32) };
  }

  private formFor(subjectToken: string): Record<string, string> {
    const cfg = this.opts.config;
    return {
      grant_type: GRANT_TYPE,
      subject_token: subjectToken,
      subject_token_type: TOKEN_TYPE[cfg.subjectTokenType === 'jwt' ? 'jwt' : 'accessToken'],
      requested_token_type: TOKEN_TYPE.accessToken,
      audience: cfg.audience,
      // RFC 8707 takes only an absolute URI as a resource.
      ...(URL.canParse(cfg.audience) ? { resource: cfg.audience } : {}),
      ...(cfg.scope ? { scope: cfg.scope } : {}),
    };
  }

  private remember(key: string, token: Cached, now: number): void {
    for (const [k, t] of this.cache)
      if (this.cache.size >= MAX_CACHED && now >= t.expiresAt) this.cache.delete(k);
    while (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(key, token);
  }

  private leaseFor(req: CredentialRequest, id: string, token: Cached, now: number): Lease {
    return {
      id,
      backend: this.kind,
      holder: req.principal,
      upstream: req.upstream,
      scope: this.scope,
      sessionKey: req.sessionKey,
      issuedAt: now,
      expiresAt: token.expiresAt,
      handle: { tokenId: token.tokenId },
    };
  }

  private credentialOf(token: Cached): Credential {
    const header = this.opts.config.header.toLowerCase();
    // Authorization takes the scheme; a header of another name carries the bare token.
    const value = header === 'authorization' ? `Bearer ${token.accessToken}` : token.accessToken;
    return { kind: 'headers', headers: { [header]: value } };
  }
}

/**
 * One exchanged token per subject token, not per caller: a caller whose token
 * was refreshed (or narrowed, or revoked at its issuer) is not served what its
 * earlier token was exchanged for.
 */
const cacheKey = (principal: string, upstream: string, scope: string, subjectToken: string): string =>
  JSON.stringify([principal, upstream, scope, createHash('sha256').update(subjectToken).digest('base64url')]);

/** RFC 6749 section 2.3.1: each part form-encoded before joining. */
const basicAuth = (id: string, secret: string): string => {
  const enc = (s: string) => new URLSearchParams({ s }).toString().slice(2);
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`;
};

const reasonOf = (err: unknown): string =>
  err instanceof PortcullisError && err.code === 'ERR_FETCH_BLOCKED' ? 'blocked' : 'fetch_failed';

const unavailable = (reason: string, upstream: string, cause: unknown): PortcullisError =>
  new PortcullisError('ERR_TOKEN_EXCHANGE_UNAVAILABLE', `token exchange failed: ${reason}`, {
    detail: { reason, upstream },
    cause,
  });

/** An OAuth error answer is the server's refusal; any other status is the server failing. */
function refusedByServer(status: number, json: unknown, upstream: string): PortcullisError {
  const error = typeof json === 'object' && json !== null ? (json as { error?: unknown }).error : undefined;
  if (status >= 400 && status < 500 && typeof error === 'string')
    return new PortcullisError('ERR_TOKEN_EXCHANGE_DENIED', `token exchange refused: ${error.slice(0, 64)}`, {
      detail: { reason: 'oauth_error', error: error.slice(0, 64), status, upstream },
    });
  return new PortcullisError('ERR_TOKEN_EXCHANGE_UNAVAILABLE', `token exchange failed: status ${status}`, {
    detail: { reason: 'server_error', status, upstream },
  });
}
