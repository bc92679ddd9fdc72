import { ConfigError } from '../errors.ts';
import type { Logger } from '../observability/log.ts';
import type { TrustedIssuer } from './authenticator.ts';
import type { TokenIdentityConfig } from './config.ts';
import { issuerKeySource } from './discovery.ts';
import { createJsonFetcher } from './fetch.ts';
import type { GatewayKeyDir } from './gateway-keys.ts';
import { KeyCache, type KeyCacheOptions } from './key-cache.ts';

export interface TrustedIssuerDeps {
  readonly ownIssuer: string;
  readonly keyDir: GatewayKeyDir;
  readonly now: () => number;
  readonly log: Logger;
}

/** The issuers a token may come from: the gateway itself first, then the configured ones. */
export function trustedIssuers(cfg: TokenIdentityConfig, deps: TrustedIssuerDeps): TrustedIssuer[] {
  const { ownIssuer, keyDir } = deps;
  if (cfg.issuers.some((i) => i.issuer === ownIssuer))
    throw new ConfigError(`identity.issuers: ${ownIssuer} is the gateway's own token issuer`, [
      { path: 'identity.issuers', message: 'must differ from identity.gatewayTokens.issuer' },
    ]);
  const fetchJson = createJsonFetcher(cfg.fetch);
  const cacheOpts = (label: string): KeyCacheOptions => ({
    maxAgeSeconds: cfg.jwks.maxAgeSeconds,
    refetchCooldownSeconds: cfg.jwks.refetchCooldownSeconds,
    allowSymmetric: false,
    now: deps.now,
    log: deps.log,
    label,
  });
  const own: TrustedIssuer = {
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
  };
  return [
    own,
    ...cfg.issuers.map((i) => ({
      issuer: i.issuer,
      keys: new KeyCache(issuerKeySource(i, fetchJson), cacheOpts(i.issuer)),
      algorithms: i.algorithms,
      requiredScopes: i.requiredScopes,
      workloadClaim: i.workloadClaim,
      allowListClaims: i.allowListClaims,
    })),
  ];
}
