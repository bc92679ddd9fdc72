import type { X509Certificate } from 'node:crypto';
import type { RequestListener } from 'node:http';
import { resolve } from 'node:path';
import type { Config } from '../config/schema.ts';
import { PortcullisError } from '../errors.ts';
import type { Logger } from '../observability/log.ts';
import { openRevocationStore } from '../state/open.ts';
import type { RevocationStore } from '../state/revocations.ts';
import { Authenticator } from './authenticator.ts';
import { authenticateOverMtls, withoutCertificate } from './certificate-binding.ts';
import type { TokenIdentityConfig } from './config.ts';
import { type AuthError, authError } from './errors.ts';
import { GatewayKeyDir } from './gateway-keys.ts';
import { recheckOpenGateway } from './open-gateway.ts';
import { ANONYMOUS, type Principal } from './principal.ts';
import { ProtectedResource } from './resource-metadata.ts';
import { createMtlsServer, type TlsServer } from './tls.ts';
import { trustedIssuers } from './trusted-issuers.ts';

/** What the listeners and the identify stage need from identity. */
export interface IdentityService {
  readonly mode: 'none' | 'token';
  /** Verifies the caller's credential (HTTP `Authorization`); ANONYMOUS on an open gateway. */
  authenticate(authorization: string | undefined, peerCert?: X509Certificate): Promise<Principal>;
  /** An HTTPS server requiring client certificates, when `identity.mtls` is configured. */
  createServer?(handler: RequestListener): TlsServer;
  /**
   * Every call: expiry and revocation, fail closed. On an open gateway it
   * passes ANONYMOUS only (see open-gateway.ts).
   */
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
  /** Public keys the gateway signs other things with (result attestations), published beside the token keys. */
  publishedKeys?: () => Record<string, unknown>[];
}

const JWKS_PATH = '/.well-known/jwks.json';
/**
 * The keys results are signed with, in a key set of their own: a verifier of
 * gateway tokens or minted credentials that fetches `/.well-known/jwks.json`
 * must never find a key that signs something else (a result key, kept
 * published for as long as what it signed must verify, would sign a token
 * such a verifier accepts).
 */
export const ATTESTATION_JWKS_PATH = '/.well-known/portcullis-attestation-jwks.json';

export function gatewayIssuer(cfg: TokenIdentityConfig): string {
  return cfg.gatewayTokens.issuer ?? new URL(cfg.resource).origin;
}

export function gatewayKeyDir(cfg: Config['identity'], baseDir: string, now?: () => number): GatewayKeyDir {
  return new GatewayKeyDir(resolve(baseDir, cfg.gatewayTokens.keyDir), now);
}

export function createIdentity(config: Config, baseDir: string, deps: IdentityDeps): IdentityService {
  let store = deps.revocations;
  const revocations = () => {
    store ??= openRevocationStore(config.state, baseDir);
    return store;
  };
  const close = async () => {
    await store?.close();
  };
  const published = deps.publishedKeys ?? (() => []);
  if (config.identity.mode === 'none')
    return {
      mode: 'none',
      authenticate: async () => ANONYMOUS,
      recheck: recheckOpenGateway,
      challenge: () => 'Bearer',
      // An open gateway mints no tokens; it still publishes the keys its results are signed with.
      wellKnown: (path) => attestationKeys(path, published),
      revocations,
      close,
    };
  return createTokenIdentity(config.identity, baseDir, { ...deps, revocations, close, published });
}

interface TokenIdentityDeps {
  readonly log: Logger;
  readonly now?: () => number;
  readonly revocations: () => RevocationStore;
  readonly close: () => Promise<void>;
  readonly published: () => Record<string, unknown>[];
}

function createTokenIdentity(
  cfg: TokenIdentityConfig,
  baseDir: string,
  deps: TokenIdentityDeps,
): IdentityService {
  const now = deps.now ?? Date.now;
  const keyDir = gatewayKeyDir(cfg, baseDir, now);
  const auth = new Authenticator({
    resource: cfg.resource,
    issuers: trustedIssuers(cfg, { ownIssuer: gatewayIssuer(cfg), keyDir, now, log: deps.log }),
    requiredScopes: cfg.requiredScopes,
    toleranceSeconds: cfg.clockToleranceSeconds,
    now,
    log: deps.log,
  });
  const resource = new ProtectedResource(cfg);
  const mtls = cfg.mtls;
  return {
    mode: 'token',
    authenticate: async (authorization, peerCert) =>
      mtls
        ? authenticateOverMtls(mtls, auth, authorization, peerCert)
        : withoutCertificate(await auth.authenticate(authorization)),
    ...(mtls
      ? { createServer: (handler: RequestListener) => createMtlsServer(mtls, baseDir, handler, deps.log) }
      : {}),
    recheck: (principal) => recheckToken(principal, { auth, revocations: deps.revocations }),
    challenge: (err) => resource.challenge(err),
    wellKnown(path) {
      if (resource.servesMetadataAt(path)) return resource.metadata;
      if (path === JWKS_PATH) return keyDir.jwks(cfg.gatewayTokens.maxTtlSeconds);
      return attestationKeys(path, deps.published);
    },
    revocations: deps.revocations,
    close: deps.close,
  };
}

/** The result-signing key set, at its own path only; none when results are not signed. */
function attestationKeys(path: string, published: () => Record<string, unknown>[]) {
  if (path !== ATTESTATION_JWKS_PATH) return undefined;
  const keys = published();
  return keys.length > 0 ? { keys } : undefined;
}

/** Every call of a token holder: still unexpired and not revoked, or refused (fail closed). */
async function recheckToken(
  principal: Principal,
  deps: { auth: Authenticator; revocations: () => RevocationStore },
): Promise<void> {
  if (principal.authMethod === 'none') throw authError('missing');
  if (deps.auth.expired(principal)) throw authError('expired');
  let hit: Awaited<ReturnType<RevocationStore['find']>>;
  try {
    hit = await deps.revocations().find(principal);
  } catch (err) {
    throw new PortcullisError('ERR_STATE_UNAVAILABLE', 'revocation store unavailable', { cause: err });
  }
  if (hit) throw authError('revoked', { kind: hit.kind });
}
