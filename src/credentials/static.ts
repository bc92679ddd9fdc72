import type { Config } from '../config/schema.ts';
import { isSecretRef, resolveValue } from '../config/secrets.ts';
import { PortcullisError } from '../errors.ts';
import type { StaticSecretConfig } from './config.ts';
import type { Credential, CredentialBackend, CredentialRequest, Issued } from './types.ts';

/** How long one static lease is reused for a caller before the references are read again. */
const STATIC_LEASE_MS = 15 * 60_000;

export interface StaticOptions {
  readonly upstream: string;
  readonly config: StaticSecretConfig;
  readonly baseDir: string;
  readonly now: () => number;
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * A long-lived secret, by `env:`/`file:` reference, only where configured:
 * ambient authority, the same for every caller, which `config check` lists as
 * such. It cannot be revoked or scoped by the gateway; the lease only records
 * who was handed it. References are read again for each lease, so a rotated
 * file is picked up; one that no longer resolves denies the call.
 */
export class StaticBackend implements CredentialBackend {
  readonly kind = 'static';
  readonly issuesLocally = true;
  readonly granularity = 'principal';
  readonly #o: StaticOptions;

  constructor(opts: StaticOptions) {
    this.#o = opts;
    // A reference that does not resolve stops the start (ERR_SECRET_UNRESOLVED), as the config's own do.
    this.resolve();
  }

  async issue(req: CredentialRequest, leaseId: string): Promise<Issued> {
    const now = this.#o.now();
    return {
      lease: {
        id: leaseId,
        backend: this.kind,
        holder: req.principal,
        upstream: this.#o.upstream,
        scope: 'static',
        sessionKey: req.sessionKey,
        issuedAt: now,
        expiresAt: now + STATIC_LEASE_MS,
      },
      credential: this.credential(),
    };
  }

  /** Nothing to revoke: the secret outlives every lease (that is what makes it ambient). */
  async revoke(): Promise<void> {}

  private credential(): Credential {
    try {
      return this.resolve();
    } catch (err) {
      throw new PortcullisError('ERR_CREDENTIAL_UNAVAILABLE', `static credential of ${this.#o.upstream}`, {
        cause: err,
      });
    }
  }

  private resolve(): Credential {
    const { config, baseDir, env } = this.#o;
    const resolveAll = (refs: Record<string, string>, lower: boolean) =>
      Object.fromEntries(
        Object.entries(refs).map(([k, ref]) => [
          lower ? k.toLowerCase() : k,
          resolveValue(ref, baseDir, env),
        ]),
      );
    if (Object.keys(config.headers).length > 0)
      return { kind: 'headers', headers: resolveAll(config.headers, true) };
    return { kind: 'env', env: resolveAll(config.env, false) };
  }
}

/** One long-lived secret an upstream is handed whoever calls: where it goes and its reference, never its value. */
export interface AmbientSecret {
  readonly upstream: string;
  readonly where: string;
  readonly reference: string;
}

/**
 * Every static secret the config hands upstreams: `credentials` of kind
 * `static`, and the references among an HTTP upstream's own `headers` (the
 * same authority by another name). `config check` lists each as a warning.
 */
export function ambientSecrets(upstreams: Config['upstreams']): AmbientSecret[] {
  const found: AmbientSecret[] = [];
  const add = (upstream: string, where: string, refs: Record<string, string>) => {
    for (const [name, reference] of Object.entries(refs))
      if (isSecretRef(reference)) found.push({ upstream, where: `${where} ${name}`, reference });
  };
  for (const [name, u] of Object.entries(upstreams)) {
    if (u.credentials?.kind === 'static') {
      add(name, 'credential header', u.credentials.headers);
      add(name, 'credential env', u.credentials.env);
    }
    if (u.transport === 'http') add(name, 'header', u.headers);
  }
  return found;
}
