import type { LoadedConfig } from '../config/load.ts';
import { resolveValue } from '../config/secrets.ts';
import type { Gateway } from '../gateway.ts';
import { AuthError } from './errors.ts';
import { ANONYMOUS, type Principal } from './principal.ts';

/**
 * The local (stdio) caller is whoever holds the gateway token named by
 * `identity.localToken` (default env:PORTCULLIS_TOKEN): being on the same
 * machine proves nothing. A missing or refused token stops `wrap`.
 */
export async function localPrincipal(loaded: LoadedConfig, gateway: Gateway): Promise<Principal> {
  const cfg = loaded.config.identity;
  if (cfg.mode === 'none') return ANONYMOUS;
  let token: string;
  try {
    token = resolveValue(cfg.localToken, loaded.baseDir).trim();
  } catch {
    throw new AuthError('missing', { source: cfg.localToken });
  }
  const principal = await gateway.identity.authenticate(`Bearer ${token}`);
  await gateway.identity.recheck(principal);
  return principal;
}
