import { allowsListed, checkAllowLists } from '../../identity/allow-lists.ts';
import type { IdentityService } from '../../identity/service.ts';
import type { CallContext } from '../context.ts';
import type { Stage } from '../runner.ts';

/**
 * Re-establishes who is calling on every call: the session's principal,
 * checked again for expiry and revocation (fail closed), and a token's
 * allow lists (a tool, prompt or resource it does not name is as unknown as
 * one that does not exist, and so is any other kind of request). Runs first, and again just before forwarding, so a revocation
 * reaches calls still in flight. `reuseTransportCheck`: skip the check when
 * the transport made it for this very request (`ctx.identityChecked`); never
 * for the run just before forwarding.
 */
export function identifyStage(
  identity: IdentityService,
  name = 'identify',
  opts: { reuseTransportCheck?: boolean } = {},
): Stage {
  return {
    name,
    async run(ctx: CallContext) {
      ctx.principal = ctx.session.principal;
      if (identity.mode === 'none') return;
      if (!(opts.reuseTransportCheck && ctx.identityChecked)) await identity.recheck(ctx.principal);
      const allowed = ctx.principal.allowed;
      if (allowed) checkAllowLists(allowed, ctx.request.method, ctx.request.params);
    },
  };
}

/** Lists show a token holder only the tools, prompts, resources and templates its token allows. */
export const allowListFilter = (principal: CallContext['principal'], method: string, id: unknown): boolean =>
  principal.allowed === undefined || allowsListed(principal.allowed, method, id);
