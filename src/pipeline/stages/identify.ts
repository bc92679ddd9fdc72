import { checkAllowLists } from '../../identity/allow-lists.ts';
import type { IdentityService } from '../../identity/service.ts';
import type { CallContext } from '../context.ts';
import type { Stage } from '../runner.ts';

/**
 * Re-establishes who is calling on every call: the session's principal (whose
 * credential the transport verified), checked again for expiry and revocation
 * (fail closed), and a token's allow lists (a tool, prompt or resource it does
 * not name is as unknown as one that does not exist, and so is any other kind
 * of request). Runs first, and again just before forwarding, so a revocation
 * reaches calls still in flight.
 */
export function identifyStage(identity: IdentityService, name = 'identify'): Stage {
  return {
    name,
    async run(ctx: CallContext) {
      ctx.principal = ctx.session.principal;
      if (identity.mode === 'none') return;
      await identity.recheck(ctx.principal);
      const allowed = ctx.principal.allowed;
      if (allowed) checkAllowLists(allowed, ctx.request.method, ctx.request.params);
    },
  };
}
