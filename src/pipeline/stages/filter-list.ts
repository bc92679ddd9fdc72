import { allowsListed } from '../../identity/allow-lists.ts';
import { resultResponse } from '../../jsonrpc.ts';
import { networkOf } from '../../policy/facts/network.ts';
import type { PolicyService } from '../../policy/service.ts';
import { listedId, listResult } from '../../upstream/aggregate.ts';
import type { CallContext } from '../context.ts';
import type { Stage } from '../runner.ts';
import { eraResult } from './forward.ts';

/**
 * Answers a gateway list with only what the caller may use: what its token's
 * allow lists name, then what policy lets it use. Runs after `forward`, which
 * leaves the unfiltered list in `ctx.listed` and no response: without this
 * stage a list is never answered, and the runner refuses the call.
 */
export function filterListStage(policy: PolicyService): Stage {
  return {
    name: 'filter-list',
    run(ctx: CallContext) {
      const listed = ctx.listed;
      if (!listed) return;
      const allowed = ctx.principal.allowed;
      const visible =
        allowed === undefined
          ? listed.items
          : listed.items.filter(({ item }) =>
              allowsListed(allowed, listed.method, listedId(listed.method, item)),
            );
      // Set by authorize for every gateway list: without it the list would be filtered by a set no record names.
      if (!ctx.listPolicy) throw new Error('a gateway list with no policy set authorizing it');
      const items = policy.filterList(
        ctx.listPolicy,
        ctx.principal,
        listed.method,
        visible,
        networkOf(ctx.session),
      );
      ctx.response = resultResponse(ctx.request.id, eraResult(ctx, listResult(listed.method, items)));
    },
  };
}
