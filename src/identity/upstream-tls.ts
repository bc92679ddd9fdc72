import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AgentOptions } from 'node:https';
import { resolve } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { ConfigError } from '../errors.ts';
import type { UpstreamMtlsConfig } from './config.ts';
import { peerIdentity } from './spiffe.ts';

/**
 * TLS options for an HTTP upstream that must prove its SPIFFE ID: the gateway
 * presents its own SVID, the upstream's certificate must chain to the bundle
 * and carry exactly the pinned SPIFFE ID (instead of a DNS name). Files are
 * read each time a connection is (re)built, so a renewed SVID is picked up.
 */
export function upstreamTlsOptions(url: string, cfg: UpstreamMtlsConfig, baseDir: string): AgentOptions {
  if (new URL(url).protocol !== 'https:')
    throw new ConfigError(`upstream ${url}: mtls needs an https:// URL`);
  const read = (p: string) => readFileSync(resolve(baseDir, p));
  return {
    cert: read(cfg.cert),
    key: read(cfg.key),
    ca: read(cfg.trustBundle),
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    checkServerIdentity: (_host: string, cert: PeerCertificate) => {
      const peer = peerIdentity(new X509Certificate(cert.raw));
      if (typeof peer === 'string') return new Error(`upstream certificate: ${peer}`);
      if (peer.spiffeId !== cfg.spiffeId)
        return new Error('upstream SPIFFE ID does not match the pinned one');
      return undefined;
    },
  };
}
