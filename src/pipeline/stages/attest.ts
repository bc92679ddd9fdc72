import type { ResultSigner } from '../../attest/keys.ts';
import { attestResult } from '../../attest/result.ts';
import { internal } from '../../errors.ts';
import { isObject } from '../../jsonrpc.ts';
import type { CallContext } from '../context.ts';
import { fail, type Stage } from '../runner.ts';

export interface AttestStageDeps {
  /** The result signer (the newest key); null when `attest.results` is off. */
  readonly signer: ResultSigner | null;
  readonly now: () => number;
}

/**
 * Terminal, after mask (what is signed is what the client receives) and
 * before the outcome record (which keeps the attestation's hash and key):
 * every result answered after its decision record is signed. A result that
 * cannot be signed is withheld (ERR_ATTESTATION_FAILED), never sent unsigned.
 */
export function attestStage(deps: AttestStageDeps): Stage {
  const signer = deps.signer;
  return {
    name: 'attest',
    run(ctx: CallContext) {
      const res = ctx.response;
      const index = ctx.decisionIndex;
      if (!signer || !res || ctx.error || res.result === undefined || index === undefined) return;
      // An empty result (ping, logging/setLevel) carries nothing to attest, and must stay `{}` on the wire.
      if (isObject(res.result) && Object.keys(res.result).length === 0) return;
      try {
        const claims = { callId: ctx.callId, index, time: deps.now() };
        const signed = attestResult(signer.current(), res.result, claims);
        ctx.response = { ...res, result: signed.result };
        ctx.attestation = signed.summary;
        ctx.sentResult = { result: signed.result, hash: signed.sentHash };
      } catch (err) {
        fail(ctx, internal(err));
      }
    },
  };
}
