/** The JWS algorithms Portcullis knows, and the key each one needs. `none` is not among them. */
export interface AlgSpec {
  readonly kty: 'RSA' | 'EC' | 'OKP' | 'oct';
  readonly crv?: string;
  /** HMAC only: the shortest key allowed (the hash output length, RFC 7518 §3.2). */
  readonly minKeyBytes?: number;
}

export const ALGORITHMS: Readonly<Record<string, AlgSpec>> = {
  RS256: { kty: 'RSA' },
  RS384: { kty: 'RSA' },
  RS512: { kty: 'RSA' },
  PS256: { kty: 'RSA' },
  PS384: { kty: 'RSA' },
  PS512: { kty: 'RSA' },
  ES256: { kty: 'EC', crv: 'P-256' },
  ES384: { kty: 'EC', crv: 'P-384' },
  ES512: { kty: 'EC', crv: 'P-521' },
  EdDSA: { kty: 'OKP', crv: 'Ed25519' },
  Ed25519: { kty: 'OKP', crv: 'Ed25519' },
  HS256: { kty: 'oct', minKeyBytes: 32 },
  HS384: { kty: 'oct', minKeyBytes: 48 },
  HS512: { kty: 'oct', minKeyBytes: 64 },
};

export const ASYMMETRIC_ALGORITHMS = Object.keys(ALGORITHMS).filter((a) => ALGORITHMS[a]!.kty !== 'oct');

export const isKnownAlg = (alg: unknown): alg is string =>
  typeof alg === 'string' && Object.hasOwn(ALGORITHMS, alg);
