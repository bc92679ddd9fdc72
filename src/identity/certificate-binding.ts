import { createHash, type X509Certificate } from 'node:crypto';
import type { Authenticator } from './authenticator.ts';
import type { MtlsConfig } from './config.ts';
import { authError } from './errors.ts';
import type { Principal } from './principal.ts';
import { type PeerIdentity, peerIdentity, trustDomainOf } from './spiffe.ts';

/**
 * A caller over mTLS: the certificate's SPIFFE ID is the workload; a token,
 * when present (or required), adds the user and must not be bound to another
 * certificate.
 */
export async function authenticateOverMtls(
  mtls: MtlsConfig,
  auth: Authenticator,
  authorization: string | undefined,
  peerCert: X509Certificate | undefined,
): Promise<Principal> {
  const peer = peerIdentity(peerCert);
  if (typeof peer === 'string') throw authError('bad_certificate', { why: peer });
  const domains = mtls.trustDomains;
  if (domains.length > 0 && !domains.includes(trustDomainOf(peer.spiffeId)))
    throw authError('bad_certificate', { why: 'trust domain not accepted' });
  if (authorization === undefined || authorization === '') {
    if (mtls.tokenRequired) throw authError('missing');
    return workloadPrincipal(peer);
  }
  return boundToCertificate(await auth.authenticate(authorization), peer);
}

const cnfThumbprint = (p: Principal): unknown => {
  const cnf = p.claims.cnf;
  return typeof cnf === 'object' && cnf !== null ? (cnf as Record<string, unknown>)['x5t#S256'] : undefined;
};

/** A certificate-bound token (RFC 8705) is only good over that certificate. */
export function withoutCertificate(p: Principal): Principal {
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
