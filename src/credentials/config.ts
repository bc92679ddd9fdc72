import { z } from 'zod';

/** `env:NAME` or `file:PATH` (same rule as the config's own secret references). */
const ref = z
  .string()
  .regex(/^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/, 'must be a reference: env:NAME or file:PATH');

/** A JWT the gateway signs for each call: `aud` the upstream, `sub` the caller, `act` the gateway, `scope` server:tool, bound to the arguments. */
const mintedJwt = z.strictObject({
  kind: z.literal('minted-jwt'),
  /** `aud`; defaults to the upstream's canonical URI (its URL without fragment, user info or trailing slash). */
  audience: z.string().min(1).optional(),
  /** At most 60 s. */
  ttlSeconds: z.number().int().positive().max(60).default(30),
  /** The header it travels in (`Authorization: Bearer …`). */
  header: z
    .string()
    .regex(/^[A-Za-z0-9-]+$/)
    .default('authorization'),
});

/** RFC 8693 token exchange at an authorization server, on behalf of the caller, audience-restricted to the upstream. */
const tokenExchange = z.strictObject({
  kind: z.literal('token-exchange'),
  /** The authorization server's token endpoint (https, or http on loopback). */
  tokenEndpoint: z.url({ protocol: /^https?$/ }),
  clientId: z.string().min(1),
  clientSecret: ref,
  /** `audience` (and `resource`) asked for: the upstream. */
  audience: z.string().min(1),
  scope: z.string().min(1).optional(),
  /** The longest lifetime accepted; an answer promising longer is refused. */
  maxTtlSeconds: z.number().int().positive().max(3600).default(300),
  /** Renew this long before expiry. */
  refreshSkewSeconds: z.number().int().nonnegative().max(300).default(30),
  header: z
    .string()
    .regex(/^[A-Za-z0-9-]+$/)
    .default('authorization'),
  timeoutMs: z.number().int().positive().max(60_000).default(5000),
  /** How the caller's token is described to the server (`subject_token_type`): an access token, or a JWT for servers that want that. */
  subjectTokenType: z.enum(['access_token', 'jwt']).default('access_token'),
});

/** A PostgreSQL role minted per caller (or session) and granted a template role, in the manner of Vault's database secrets engine. */
const postgresRole = z.strictObject({
  kind: z.literal('postgres-role'),
  /** How the gateway connects to create and drop roles (a reference: it holds a privileged password). */
  adminUrl: ref,
  /** The role granted to each minted one (for example read-only on one schema). */
  grant: z.string().regex(/^[a-z_][a-z0-9_$]{0,62}$/),
  /** The database the upstream connects to; defaults to the admin URL's. */
  database: z.string().min(1).optional(),
  /** Host and port the upstream is given (defaults to the admin URL's). */
  host: z.string().min(1).optional(),
  port: z.number().int().positive().max(65535).optional(),
  ttlSeconds: z
    .number()
    .int()
    .positive()
    .max(24 * 3600)
    .default(900),
  per: z.enum(['principal', 'session']).default('principal'),
  /** The variable of the stdio upstream that receives the connection string. */
  env: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
    .default('DATABASE_URL'),
  /** Role names start with this. */
  rolePrefix: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,15}$/)
    .default('pc_'),
  /** How long creating or dropping a role may take before the call is denied (ERR_CREDENTIAL_UNAVAILABLE). */
  timeoutMs: z.number().int().positive().max(60_000).default(5000),
});

/** A long-lived secret by reference: ambient authority, listed as such by `config check`. */
const staticSecret = z.strictObject({
  kind: z.literal('static'),
  /** HTTP upstreams: header name -> reference. */
  headers: z.record(z.string().regex(/^[A-Za-z0-9-]+$/), ref).default({}),
  /** stdio upstreams: variable -> reference. */
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), ref).default({}),
});

export const credentialsSchema = z
  .discriminatedUnion('kind', [mintedJwt, tokenExchange, postgresRole, staticSecret])
  .describe(
    'How this upstream is given a credential for each call: minted-jwt, token-exchange, postgres-role or static',
  );

export type CredentialsConfig = z.infer<typeof credentialsSchema>;
export type MintedJwtConfig = z.infer<typeof mintedJwt>;
export type TokenExchangeConfig = z.infer<typeof tokenExchange>;
export type PostgresRoleConfig = z.infer<typeof postgresRole>;
export type StaticSecretConfig = z.infer<typeof staticSecret>;

/** Where `${credential}` in a stdio upstream's `args` is replaced by the credential it was started with. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: the literal text users write in `args`
export const CREDENTIAL_PLACEHOLDER = '${credential}';

/** What of an upstream's config decides where its credential may go. */
export interface CredentialPlacement {
  readonly transport: 'stdio' | 'http';
  readonly isolation: 'shared' | 'principal' | 'session';
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly credentials?: CredentialsConfig;
}

/**
 * Refusals at load, each with the path (under the upstream) it is about: a
 * role minted for one caller must reach only an instance started for that
 * caller, and the placeholder must have something to stand for.
 */
export function credentialPlacementIssues(up: CredentialPlacement): { path: string[]; message: string }[] {
  const issues: { path: string[]; message: string }[] = [];
  const cred = up.credentials;
  (up.args ?? []).forEach((arg, i) => {
    if (arg.includes(CREDENTIAL_PLACEHOLDER) && cred?.kind !== 'postgres-role') {
      issues.push({
        path: ['args', String(i)],
        message: `${CREDENTIAL_PLACEHOLDER} needs a postgres-role credential`,
      });
    }
  });
  if (cred?.kind !== 'postgres-role') return issues;
  if (up.transport !== 'stdio') {
    issues.push({
      path: ['credentials', 'kind'],
      message: 'postgres-role is for stdio upstreams, started per caller',
    });
  }
  if (up.isolation === 'shared') {
    issues.push({
      path: ['isolation'],
      message: `a postgres-role credential is minted per ${cred.per}: isolation shared would hand one caller's role to every caller`,
    });
  } else if (up.isolation !== cred.per) {
    issues.push({
      path: ['credentials', 'per'],
      message: `must match the upstream's isolation (${up.isolation}): each instance gets the role minted for it`,
    });
  }
  if (up.env && cred.env in up.env) {
    issues.push({ path: ['env', cred.env], message: `${cred.env} is set by the postgres-role credential` });
  }
  return issues;
}
