import { isLoopbackHost } from '../config/loopback.ts';
import type { Config, UpstreamConfig } from '../config/schema.ts';
import { ConfigError } from '../errors.ts';
import type { CredentialsConfig, MintedJwtConfig, StaticSecretConfig } from './config.ts';
import { MintedJwtBackend, type SigningKeySource } from './minted-jwt.ts';
import { StaticBackend } from './static.ts';
import { createTokenExchangeBackend } from './token-exchange.ts';
import type { CredentialBackend } from './types.ts';

export interface BackendDeps {
  readonly baseDir: string;
  readonly now: () => number;
  /**
   * The gateway as an issuer of minted JWTs: its `iss`, the `act.sub` it
   * signs as, and its key directory (whose JWKS it serves). Unset on a gateway
   * that publishes no JWKS (identity.mode none): minted JWTs are refused at start.
   */
  readonly gateway?: { readonly issuer: string; readonly actor: string; readonly keys: SigningKeySource };
}

/**
 * Each upstream's credential backend, built from its `credentials` section;
 * upstreams without one are absent (and are given nothing). A section this
 * build cannot honour stops the start with a ConfigError: never a gateway
 * that silently forwards without the credential the config asks for.
 */
export function credentialBackends(config: Config, deps: BackendDeps): Map<string, CredentialBackend> {
  const backends = new Map<string, CredentialBackend>();
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    const creds = upstream.credentials;
    // A postgres-role credential is minted when its stdio instance starts (instance-backends.ts), not per call.
    if (creds && creds.kind !== 'postgres-role')
      backends.set(name, backendFor(name, upstream, creds, config, deps));
  }
  return backends;
}

function backendFor(
  name: string,
  upstream: UpstreamConfig,
  creds: Exclude<CredentialsConfig, { kind: 'postgres-role' }>,
  config: Config,
  deps: BackendDeps,
): CredentialBackend {
  refuseCleartext(name, upstream);
  switch (creds.kind) {
    case 'minted-jwt':
      return mintedJwt(name, upstream, creds, deps);
    case 'static':
      return staticSecret(name, upstream, creds, deps);
    case 'token-exchange':
      if (upstream.transport !== 'http')
        throw refused(name, 'an exchanged token travels in an HTTP header: http upstreams only');
      refuseHeaderClash(name, upstream, creds.header.toLowerCase());
      return createTokenExchangeBackend(creds, {
        upstream: name,
        identity: config.identity,
        baseDir: deps.baseDir,
        now: deps.now,
      });
  }
}

function mintedJwt(
  name: string,
  upstream: UpstreamConfig,
  creds: MintedJwtConfig,
  deps: BackendDeps,
): CredentialBackend {
  if (upstream.transport !== 'http')
    throw refused(name, 'a minted JWT travels in an HTTP header: http upstreams only');
  if (!deps.gateway)
    throw refused(
      name,
      'minted JWTs need identity.mode token: upstreams verify them with the JWKS it serves',
    );
  const header = creds.header.toLowerCase();
  refuseHeaderClash(name, upstream, header);
  return new MintedJwtBackend({
    upstream: name,
    issuer: deps.gateway.issuer,
    actor: deps.gateway.actor,
    audience: creds.audience ?? canonicalResource(upstream.url),
    ttlSeconds: creds.ttlSeconds,
    header,
    keys: deps.gateway.keys,
    now: deps.now,
  });
}

function staticSecret(
  name: string,
  upstream: UpstreamConfig,
  creds: StaticSecretConfig,
  deps: BackendDeps,
): CredentialBackend {
  const headers = Object.keys(creds.headers);
  const env = Object.keys(creds.env);
  if (upstream.transport === 'http') {
    if (env.length > 0 || headers.length === 0)
      throw refused(name, 'a static credential of an http upstream names headers (and no env)');
    for (const h of headers) refuseHeaderClash(name, upstream, h.toLowerCase());
  } else {
    // An env credential is injected when the stdio upstream is started for its holder;
    // until that spawn-time injection exists, refuse rather than start without it.
    throw refused(
      name,
      "static env credentials are not injected yet: use the stdio upstream's own env references",
    );
  }
  return new StaticBackend({ upstream: name, config: creds, baseDir: deps.baseDir, now: deps.now });
}

/** A credential never crosses a network in clear text: plain http only to a loopback upstream. */
function refuseCleartext(name: string, upstream: UpstreamConfig): void {
  if (upstream.transport !== 'http') return;
  const url = new URL(upstream.url);
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname))
    throw refused(name, 'a credential goes only to an https upstream (or plain http on loopback)');
}

/** The upstream's own `headers` would override the credential's on the wire: one or the other. */
function refuseHeaderClash(name: string, upstream: UpstreamConfig, header: string): void {
  if (upstream.transport !== 'http') return;
  if (Object.keys(upstream.headers).some((h) => h.toLowerCase() === header))
    throw refused(name, `header ${header} is both a configured header and the credential's`);
}

const refused = (name: string, message: string): ConfigError =>
  new ConfigError(`upstreams.${name}.credentials: ${message}`, [
    { path: `upstreams.${name}.credentials`, message },
  ]);

/**
 * The upstream's canonical URI (RFC 8707, as MCP names a server: scheme and host lower case,
 * no fragment, user info or trailing slash; a query kept, since it may tell servers apart):
 * the default `aud`. The origin alone would let a token minted for one server be replayed
 * to another served from the same host.
 */
export function canonicalResource(url: string): string {
  const u = new URL(url);
  const path = u.pathname.replace(/\/+$/, '');
  return `${u.origin}${path}${u.search}`;
}
