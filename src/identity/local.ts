import type { LoadedConfig } from '../config/load.ts';
import { resolveValue } from '../config/secrets.ts';
import { AuthError } from './errors.ts';
import { ANONYMOUS, type Principal } from './principal.ts';
import type { IdentityService } from './service.ts';

/**
 * The local (stdio) caller is whoever holds the gateway token named by
 * `identity.localToken` (default env:PORTCULLIS_TOKEN): being on the same
 * machine proves nothing. A missing or refused token stops `wrap`.
 */
export async function localPrincipal(loaded: LoadedConfig, identity: IdentityService): Promise<Principal> {
  const cfg = loaded.config.identity;
  if (cfg.mode === 'none') return ANONYMOUS;
  let token: string;
  try {
    token = resolveValue(cfg.localToken, loaded.baseDir).trim();
  } catch {
    throw new AuthError('missing', { source: cfg.localToken });
  }
  const principal = await identity.authenticate(`Bearer ${token}`);
  await identity.recheck(principal);
  return principal;
}
