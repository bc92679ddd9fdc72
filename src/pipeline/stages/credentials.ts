import type { CredentialBroker } from '../../credentials/broker.ts';
import { credentialRequest } from '../../credentials/request.ts';
import { Denial } from '../../errors.ts';
import type { CallContext } from '../context.ts';
import type { Stage } from '../runner.ts';

/**
 * Gives a call to an HTTP upstream with `credentials` the credential its
 * backend issues for exactly this caller, tool and arguments; forward sends it
 * as headers. The lease is recorded before forward runs; a backend that cannot
 * issue denies the call (there is no fallback). Upstreams without credentials
 * get nothing; stdio upstreams get theirs (variables) when they are started.
 */
export function credentialsStage(
  broker: CredentialBroker,
  carriesHeaders: (upstream: string) => boolean,
): Stage {
  return {
    name: 'credentials',
    run(ctx: CallContext) {
      const route = ctx.route;
      if (route?.kind !== 'upstream' || !carriesHeaders(route.upstream)) return;
      return attach(broker, ctx, route);
    },
  };
}

async function attach(
  broker: CredentialBroker,
  ctx: CallContext,
  route: Extract<NonNullable<CallContext['route']>, { kind: 'upstream' }>,
): Promise<void> {
  const { leaseId, credential } = await broker.credentialFor(
    credentialRequest({
      callId: ctx.callId,
      principal: ctx.principal,
      sessionKey: ctx.session.key,
      upstream: route.upstream,
      method: route.method,
      ...(route.target ? { tool: route.target.original } : {}),
      params: route.params,
      signal: ctx.signal,
      ...(ctx.subjectToken ? { subjectToken: ctx.subjectToken } : {}),
    }),
  );
  ctx.leaseId = leaseId;
  if (credential.kind !== 'headers')
    throw new Denial(
      'ERR_CREDENTIAL_UNAVAILABLE',
      `upstream ${route.upstream} was issued no header credential`,
    );
  ctx.upstreamCredential = { headers: credential.headers };
}
