import { unknownTarget } from '../../errors.ts';
import type { IdentityService } from '../../identity/service.ts';
import type { CallContext } from '../context.ts';
import type { Stage } from '../runner.ts';

/**
 * Re-establishes who is calling on every call: the session's principal,
 * checked again for expiry and revocation (fail closed), and a gateway
 * token's `allowed_tools` (any other tool is as unknown as one that does not
 * exist). Runs first, and again just before forwarding, so a revocation
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
      const allowed = ctx.principal.allowedTools;
      if (allowed && ctx.request.method === 'tools/call') {
        const tool = String(ctx.request.params?.name);
        if (!allowed.includes(tool)) throw unknownTarget('tool', tool);
      }
    },
  };
}

/** tools/list shows a gateway-token holder only the tools its token names. */
export const allowedToolsFilter = (
  principal: CallContext['principal'],
  method: string,
  name: unknown,
): boolean =>
  method !== 'tools/list' ||
  principal.allowedTools === undefined ||
  principal.allowedTools.includes(String(name));
