import { createHash, type X509Certificate } from 'node:crypto';
import type { RequestListener } from 'node:http';
import { resolve } from 'node:path';
import type { Config } from '../config/schema.ts';
import { ConfigError, PortcullisError } from '../errors.ts';
import type { Logger } from '../observability/log.ts';
import { openRevocationStore } from '../state/open.ts';
import type { RevocationStore } from '../state/revocations.ts';
import { Authenticator, type TrustedIssuer } from './authenticator.ts';
import type { TokenIdentityConfig } from './config.ts';
import { issuerKeySource } from './discovery.ts';
import { type AuthError, authError } from './errors.ts';
import { createJsonFetcher } from './fetch.ts';
import { GatewayKeyDir } from './gateway-keys.ts';
import { KeyCache } from './key-cache.ts';
import { ANONYMOUS, type Principal } from './principal.ts';
import { type PeerIdentity, peerIdentity, trustDomainOf } from './spiffe.ts';
import { createMtlsServer, type TlsServer } from './tls.ts';

/** What the listeners and the identify stage need from identity. */
export interface IdentityService {
  readonly mode: 'none' | 'token';
  /** Verifies the caller's credential (HTTP `Authorization`); ANONYMOUS on an open gateway. */
  authenticate(authorization: string | undefined, peerCert?: X509Certificate): Promise<Principal>;
  /** An HTTPS server requiring client certificates, when `identity.mtls` is configured. */
  createServer?(handler: RequestListener): TlsServer;
  /** Every call: expiry and revocation, fail closed. */
  recheck(principal: Principal): Promise<void>;
  /** The `WWW-Authenticate` value for a refusal. */
  challenge(err: AuthError): string;
  /** Documents served without authentication, by path. */
  wellKnown(path: string): unknown | undefined;
  readonly revocations: () => RevocationStore;
  close(): Promise<void>;
}

export interface IdentityDeps {
  log: Logger;
  now?: () => number;
  /** Injected for tests (e.g. a store on a unique table). */
  revocations?: RevocationStore;
}

export function gatewayIssuer(cfg: TokenIdentityConfig): string {
  return cfg.gatewayTokens.issuer ?? new URL(cfg.resource).origin;
}

export function gatewayKeyDir(cfg: Config['identity'], baseDir: string, now?: () => number): GatewayKeyDir {
  return new GatewayKeyDir(resolve(baseDir, cfg.gatewayTokens.keyDir), now);
}

export function createIdentity(config: Config, baseDir: string, deps: IdentityDeps): IdentityService {
  const cfg = config.identity;
  const now = deps.now ?? Date.now;
  let store = deps.revocations;
  const revocations = () => {
    store ??= openRevocationStore(config.state, baseDir);
    return store;
  };
  if (cfg.mode === 'none') {
    return {
      mode: 'none',
      authenticate: async () => ANONYMOUS,
      recheck: async () => {},
      challenge: () => 'Bearer',
      wellKnown: () => undefined,
      revocations,
      close: async () => {
        await store?.close();
      },
    };
  }
  const fetchJson = createJsonFetcher(cfg.fetch);
  const cacheOpts = (label: string) => ({
    maxAgeSeconds: cfg.jwks.maxAgeSeconds,
    refetchCooldownSeconds: cfg.jwks.refetchCooldownSeconds,
    allowSymmetric: false,
    now,
    log: deps.log,
    label,
  });
  const keyDir = gatewayKeyDir(cfg, baseDir, now);
  const ownIssuer = gatewayIssuer(cfg);
  if (cfg.issuers.some((i) => i.issuer === ownIssuer))
    throw new ConfigError(`identity.issuers: ${ownIssuer} is the gateway's own token issuer`, [
      { path: 'identity.issuers', message: 'must differ from identity.gatewayTokens.issuer' },
    ]);
  const issuers: TrustedIssuer[] = [
    {
      issuer: ownIssuer,
      keys: new KeyCache(
        { load: async () => ({ jwks: keyDir.jwks(cfg.gatewayTokens.maxTtlSeconds), maxAge: 60 }) },
        // A local directory read is cheap: a rotated key is picked up on its first token.
        { ...cacheOpts(ownIssuer), refetchCooldownSeconds: 0 },
      ),
      algorithms: ['EdDSA'],
      requiredScopes: [],
      workloadClaim: 'client_id',
      gateway: {
        maxTtlSeconds: cfg.gatewayTokens.maxTtlSeconds,
        couldHaveSigned: (kid, iat) => keyDir.couldHaveSigned(kid, iat),
      },
    },
    ...cfg.issuers.map((i) => ({
      issuer: i.issuer,
      keys: new KeyCache(issuerKeySource(i, fetchJson), cacheOpts(i.issuer)),
      algorithms: i.algorithms,
      requiredScopes: i.requiredScopes,
      workloadClaim: i.workloadClaim,
      allowListClaims: i.allowListClaims,
    })),
  ];
  const auth = new Authenticator({
    resource: cfg.resource,
    issuers,
    requiredScopes: cfg.requiredScopes,
    toleranceSeconds: cfg.clockToleranceSeconds,
    now,
    log: deps.log,
  });
  const resource = new URL(cfg.resource);
  const resourcePath = resource.pathname === '/' ? '' : resource.pathname;
  const metadataUrl = `${resource.origin}/.well-known/oauth-protected-resource${resourcePath}`;
  const scopes = [...new Set([...cfg.requiredScopes, ...cfg.issuers.flatMap((i) => i.requiredScopes)])];
  const prm = {
    resource: cfg.resource,
    authorization_servers: cfg.issuers.map((i) => i.issuer),
    bearer_methods_supported: ['header'],
    ...(scopes.length > 0 ? { scopes_supported: scopes } : {}),
    resource_name: 'Portcullis MCP gateway',
  };

  return {
    mode: 'token',
    async authenticate(authorization, peerCert) {
      if (!cfg.mtls) return withoutCertificate(await auth.authenticate(authorization));
      const peer = peerIdentity(peerCert);
      if (typeof peer === 'string') throw authError('bad_certificate', { why: peer });
      const domains = cfg.mtls.trustDomains;
      if (domains.length > 0 && !domains.includes(trustDomainOf(peer.spiffeId)))
        throw authError('bad_certificate', { why: 'trust domain not accepted' });
      if (authorization === undefined || authorization === '') {
        if (cfg.mtls.tokenRequired) throw authError('missing');
        return workloadPrincipal(peer);
      }
      return boundToCertificate(await auth.authenticate(authorization), peer);
    },
    ...(cfg.mtls
      ? {
          createServer: (handler: RequestListener) => createMtlsServer(cfg.mtls!, baseDir, handler, deps.log),
        }
      : {}),
    async recheck(principal) {
      if (principal.authMethod === 'none') throw authError('missing');
      if (auth.expired(principal)) throw authError('expired');
      let hit: Awaited<ReturnType<RevocationStore['find']>>;
      try {
        hit = await revocations().find(principal);
      } catch (err) {
        throw new PortcullisError('ERR_STATE_UNAVAILABLE', 'revocation store unavailable', {
          cause: err,
        });
      }
      if (hit) throw authError('revoked', { kind: hit.kind });
    },
    challenge(err) {
      const parts = [`resource_metadata="${metadataUrl}"`];
      if (err.reason === 'insufficient_scope') parts.unshift('error="insufficient_scope"');
      else if (err.reason === 'bad_request') parts.unshift('error="invalid_request"');
      else if (err.reason !== 'missing') parts.unshift('error="invalid_token"');
      if (scopes.length > 0) parts.push(`scope="${scopes.join(' ')}"`);
      return `Bearer ${parts.join(', ')}`;
    },
    wellKnown(path) {
      if (
        path === '/.well-known/oauth-protected-resource' ||
        path === `/.well-known/oauth-protected-resource${resourcePath}`
      )
        return prm;
      if (path === '/.well-known/jwks.json') return keyDir.jwks(cfg.gatewayTokens.maxTtlSeconds);
      return undefined;
    },
    revocations,
    close: async () => {
      await store?.close();
    },
  };
}

const cnfThumbprint = (p: Principal): unknown => {
  const cnf = p.claims.cnf;
  return typeof cnf === 'object' && cnf !== null ? (cnf as Record<string, unknown>)['x5t#S256'] : undefined;
};

/** A certificate-bound token (RFC 8705) is only good over that certificate. */
function withoutCertificate(p: Principal): Principal {
  if (cnfThumbprint(p) !== undefined)
    throw authError('cert_binding', { why: 'bound token without a certificate' });
  return p;
}

function boundToCertificate(p: Principal, peer: PeerIdentity): Principal {
  const bound = cnfThumbprint(p);
  if (bound !== undefined && bound !== peer.thumbprint) throw authError('cert_binding');
  return Object.freeze({
    ...p,
    id: principalId(['mtls+jwt', p.issuer ?? null, peer.spiffeId, p.user ?? null]),
    authMethod: 'mtls+jwt',
    workload: peer.spiffeId,
    ...(p.workload && p.workload !== peer.spiffeId ? { tokenWorkload: p.workload } : {}),
    expiresAt: Math.min(p.expiresAt ?? peer.notAfter, peer.notAfter),
  });
}

function workloadPrincipal(peer: PeerIdentity): Principal {
  return Object.freeze({
    id: principalId(['mtls', peer.spiffeId]),
    authMethod: 'mtls',
    workload: peer.spiffeId,
    scopes: [],
    expiresAt: peer.notAfter,
    claims: Object.freeze({}),
  });
}

const principalId = (parts: unknown[]): string =>
  `p_${createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32)}`;
