import { PortcullisError } from '../errors.ts';
import type { IssuerConfig } from './config.ts';
import type { JsonFetcher } from './fetch.ts';
import { isRecord } from './jwk.ts';
import type { KeySource } from './key-cache.ts';

/** Where an issuer's metadata lives: OIDC discovery, or RFC 8414 with the path inserted. */
export function metadataUrl(issuer: string, kind: 'oidc' | 'oauth'): string {
  const u = new URL(issuer);
  const path = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '');
  if (kind === 'oidc') return `${u.origin}${path}/.well-known/openid-configuration`;
  return `${u.origin}/.well-known/oauth-authorization-server${path}`;
}

/**
 * Keys of a configured issuer: the JWKS named by its metadata (whose `issuer`
 * must be exactly the configured one, RFC 8414 §3.3), or a configured JWKS URL.
 */
export function issuerKeySource(cfg: IssuerConfig, fetchJson: JsonFetcher): KeySource {
  let jwksUri = cfg.jwksUri;
  return {
    async load() {
      if (!jwksUri) {
        if (cfg.discovery === 'none')
          throw new PortcullisError('ERR_KEYS_UNAVAILABLE', 'no jwksUri configured');
        const { json } = await fetchJson(metadataUrl(cfg.issuer, cfg.discovery));
        if (!isRecord(json) || json.issuer !== cfg.issuer || typeof json.jwks_uri !== 'string')
          throw new PortcullisError(
            'ERR_KEYS_UNAVAILABLE',
            'issuer metadata does not match the configured issuer',
            {
              detail: { issuer: cfg.issuer },
            },
          );
        jwksUri = json.jwks_uri;
      }
      const { json, maxAge } = await fetchJson(jwksUri);
      return { jwks: json, ...(maxAge === undefined ? {} : { maxAge }) };
    },
  };
}
