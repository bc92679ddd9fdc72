import { z } from 'zod';

/**
 * A caller's public key as a JWK (RFC 7517): Ed25519, P-256/384/521 or RSA,
 * never a private part (a strict object refuses `d`, `p`, `q`, …).
 */
export const publicJwkSchema = z.strictObject({
  kty: z.enum(['OKP', 'EC', 'RSA']),
  crv: z.enum(['Ed25519', 'P-256', 'P-384', 'P-521']).optional(),
  x: z.string().min(1).optional(),
  y: z.string().min(1).optional(),
  n: z.string().min(1).optional(),
  e: z.string().min(1).optional(),
  kid: z.string().min(1).max(256).optional(),
  alg: z.string().min(1).optional(),
  use: z.literal('sig').optional(),
});

/** A key registered for callers: every selector given must match the caller (at least one is required). */
const registeredKey = z
  .strictObject({
    /** The gateway's principal id (`p_…`, as the audit log names it). */
    principal: z.string().min(1).optional(),
    /** The token's `sub`. */
    user: z.string().min(1).optional(),
    /** The workload (OAuth client id or SPIFFE ID). */
    workload: z.string().min(1).optional(),
    jwk: publicJwkSchema,
  })
  .refine(
    (k) => k.principal !== undefined || k.user !== undefined || k.workload !== undefined,
    'name the caller: principal, user or workload',
  );

const requestsSchema = z
  .strictObject({
    /** Keys bound to callers besides a token's `cnf.jwk` (RFC 7800). */
    keys: z.array(registeredKey).default([]),
    /** How far a signature's `time` may be from the gateway's clock; its nonce is remembered this long. */
    maxSkewSeconds: z.number().int().positive().max(3600).default(300),
  })
  .prefault({});

/** The `attest` section: signed results and caller-signed requests. */
export const attestSchema = z
  .strictObject({
    /** Sign every result answered after its decision record (`_meta["io.portcullis/attestation"]`). */
    results: z.boolean().default(true),
    /** Ed25519 keys that sign results, relative to the config file; published in `/.well-known/portcullis-attestation-jwks.json`. */
    keyDir: z.string().min(1).default('.portcullis/attest-keys'),
    requests: requestsSchema,
  })
  .prefault({});

export type AttestConfig = z.infer<typeof attestSchema>;
export type PublicJwk = z.infer<typeof publicJwkSchema>;
export type RegisteredKey = z.infer<typeof registeredKey>;
