import { type RequestSignatures, signatureMeta } from '../../attest/request-signature.ts';
import type { CallContext } from '../context.ts';
import type { Stage } from '../runner.ts';

/**
 * Before policy: a request the caller signed must verify with a key bound to
 * it, be fresh and not replayed, or the call is refused here with its own code.
 * Policy then sees `context.request.signed`; an unsigned request is decided there.
 */
export function requestSignatureStage(signatures: RequestSignatures): Stage {
  return {
    name: 'request-signature',
    run(ctx: CallContext) {
      ctx.requestSigned = false;
      // Synchronous for an unsigned request: no turn of the microtask queue for the common case.
      if (signatureMeta(ctx.request.params) === undefined) return;
      return signatures.check(ctx.request, ctx.principal).then((signed) => {
        ctx.requestSigned = signed;
      });
    },
  };
}
