import { authError } from './errors.ts';
import { ANONYMOUS, type Principal } from './principal.ts';

/**
 * The recheck of an open gateway (`identity.mode: none`). Its one caller is
 * ANONYMOUS, which carries no credential: nothing expires and there is no
 * token, user or workload a revocation could name, so ANONYMOUS passes, by
 * this decision rather than by default. Any other principal cannot have come
 * from this gateway's own listeners and cannot be checked here: refused.
 */
export async function recheckOpenGateway(principal: Principal): Promise<void> {
  if (principal.authMethod !== ANONYMOUS.authMethod || principal.id !== ANONYMOUS.id)
    throw authError('missing', { why: 'open gateway rechecks only ANONYMOUS' });
}
