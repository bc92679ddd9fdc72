import { z } from 'zod';
import { ASYMMETRIC_ALGORITHMS } from './algorithms.ts';

/** HTTPS, or plain HTTP to a loopback host (local providers and tests). */
const httpsOrLoopbackUrl = z.url({ protocol: /^https?$/ }).refine((u) => {
  const url = new URL(u);
  return url.protocol === 'https:' || ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}, 'must be https:// (plain http only to a loopback host)');

const issuerSchema = z.strictObject({
  /** Exactly the `iss` the tokens carry. */
  issuer: httpsOrLoopbackUrl,
  /** How keys are found: OIDC discovery, RFC 8414 metadata, or a JWKS URL given here. */
  discovery: z.enum(['oidc', 'oauth', 'none']).default('oidc'),
  jwksUri: httpsOrLoopbackUrl.optional(),
  /** Never `none`, never HMAC: only asymmetric algorithms may be allowed for an issuer. */
  algorithms: z
    .array(z.enum(ASYMMETRIC_ALGORITHMS as [string, ...string[]]))
    .min(1)
    .default(['RS256', 'ES256', 'EdDSA']),
  /** Scopes every token of this issuer must carry (besides `identity.requiredScopes`). */
  requiredScopes: z.array(z.string().min(1)).default([]),
  /** Claim that names the workload (OAuth client). */
  workloadClaim: z.string().min(1).default('client_id'),
  /**
   * This issuer's tokens name what they allow (`allowed_tools`, `allowed_prompts`,
   * `allowed_resources`), as gateway tokens do: every token must carry at least
   * one of them, and every kind it does not name is denied.
   */
  allowListClaims: z.boolean().default(false),
});

const fetchSchema = z
  .strictObject({
    /** Loopback (127/8, ::1) issuers and JWKS: for tests and local providers only. */
    allowLoopback: z.boolean().default(false),
    /** Private (RFC 1918, ULA) and link-local addresses. */
    allowPrivate: z.boolean().default(false),
    /** Plain http:// is only ever allowed to loopback, and only with allowLoopback. */
    timeoutMs: z.number().int().positive().max(60_000).default(5_000),
    maxBytes: z
      .number()
      .int()
      .positive()
      .default(512 * 1024),
    maxRedirects: z.number().int().min(0).max(5).default(2),
  })
  .prefault({});

const gatewayTokensSchema = z
  .strictObject({
    /** Directory holding the gateway's Ed25519 signing keys (relative to the config file). */
    keyDir: z.string().min(1).default('.portcullis/keys'),
    /** The longest lifetime a gateway token may have, in seconds. */
    maxTtlSeconds: z
      .number()
      .int()
      .positive()
      .max(7 * 24 * 3600)
      .default(3600),
    /** `iss` of gateway tokens; defaults to the resource URI's origin. */
    issuer: z.string().min(1).optional(),
  })
  .prefault({});

const mtlsSchema = z.strictObject({
  /** The gateway's own certificate (PEM), its key, and the CA bundle client SVIDs must chain to. */
  cert: z.string().min(1),
  key: z.string().min(1),
  trustBundle: z.string().min(1),
  /** SPIFFE trust domains accepted; empty: any the bundle vouches for. */
  trustDomains: z.array(z.string().regex(/^[a-z0-9._-]{1,255}$/)).default([]),
  /** A bearer token is required besides the certificate (else the SVID alone identifies the workload). */
  tokenRequired: z.boolean().default(false),
  /** How often certificate files are checked for change. */
  reloadIntervalMs: z.number().int().positive().default(1000),
});

/** An HTTP upstream reached over mTLS: our SVID, its bundle, and the SPIFFE ID it must present. */
export const upstreamMtlsSchema = z.strictObject({
  cert: z.string().min(1),
  key: z.string().min(1),
  trustBundle: z.string().min(1),
  spiffeId: z.string().regex(/^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*$/),
});

const noneMode = z.strictObject({
  /** `none` is an open gateway, refused anywhere but loopback. */
  mode: z.literal('none'),
  gatewayTokens: gatewayTokensSchema,
});

const tokenMode = z.strictObject({
  /** Every request carries a bearer token: from a configured issuer or minted by this gateway. */
  mode: z.literal('token'),
  /** The gateway's canonical resource URI (RFC 8707): tokens must name it in `aud`. */
  resource: httpsOrLoopbackUrl,
  issuers: z.array(issuerSchema).default([]),
  requiredScopes: z.array(z.string().min(1)).default([]),
  /** Allowed clock skew for exp/nbf/iat, in seconds. */
  clockToleranceSeconds: z.number().int().min(0).max(300).default(30),
  jwks: z
    .strictObject({
      /** Keys are kept at most this long when the server says nothing shorter. */
      maxAgeSeconds: z.number().int().positive().default(600),
      /** An unknown `kid` refetches the keys at most this often. */
      refetchCooldownSeconds: z.number().int().min(0).default(30),
    })
    .prefault({}),
  fetch: fetchSchema,
  gatewayTokens: gatewayTokensSchema,
  /** HTTPS with client certificates (X.509-SVIDs); the workload is the SPIFFE ID. */
  mtls: mtlsSchema.optional(),
  /** Gateway token for `portcullis wrap`: a reference (env:NAME / file:PATH). */
  localToken: z
    .string()
    .regex(/^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/)
    .default('env:PORTCULLIS_TOKEN'),
});

export const identitySchema = z
  .discriminatedUnion('mode', [noneMode, tokenMode])
  .default({ mode: 'none', gatewayTokens: gatewayTokensSchema.parse({}) });

export type IdentityConfig = z.infer<typeof identitySchema>;
export type TokenIdentityConfig = z.infer<typeof tokenMode>;
export type IssuerConfig = z.infer<typeof issuerSchema>;
export type FetchConfig = z.infer<typeof fetchSchema>;
export type MtlsConfig = z.infer<typeof mtlsSchema>;
export type UpstreamMtlsConfig = z.infer<typeof upstreamMtlsSchema>;
