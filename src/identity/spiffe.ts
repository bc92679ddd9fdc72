import { createHash, type X509Certificate } from 'node:crypto';

/** What an mTLS connection proved about the caller. */
export interface PeerIdentity {
  readonly spiffeId: string;
  /** RFC 8705 `x5t#S256`: base64url SHA-256 of the client certificate's DER. */
  readonly thumbprint: string;
  /** Seconds since the epoch: the SVID's notAfter. */
  readonly notAfter: number;
}

const SPIFFE_ID = /^spiffe:\/\/([a-z0-9._-]{1,255})(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*$/;

/**
 * The caller's workload identity from its X.509-SVID: exactly one URI SAN,
 * and it must be a well-formed `spiffe://` ID (zero or several: refused).
 */
export function peerIdentity(cert: X509Certificate | undefined): PeerIdentity | string {
  if (!cert) return 'no client certificate';
  const uris = uriSans(cert.subjectAltName ?? '');
  if (uris.length !== 1) return `expected exactly one URI SAN, found ${uris.length}`;
  const id = uris[0]!;
  if (!SPIFFE_ID.test(id)) return 'URI SAN is not a SPIFFE ID';
  return {
    spiffeId: id,
    thumbprint: createHash('sha256').update(cert.raw).digest('base64url'),
    notAfter: Math.floor(Date.parse(cert.validTo) / 1000),
  };
}

export const trustDomainOf = (spiffeId: string): string => SPIFFE_ID.exec(spiffeId)?.[1] ?? '';

/** URI entries of Node's `subjectAltName` text (values with separators come JSON-quoted). */
function uriSans(text: string): string[] {
  const out: string[] = [];
  const re = /(?:^|, )URI:("(?:[^"\\]|\\.)*"|[^,]*)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const raw = m[1]!;
    out.push(raw.startsWith('"') ? (JSON.parse(raw) as string) : raw);
  }
  return out;
}
