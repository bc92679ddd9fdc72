import { canonicalize } from '../audit/jcs.ts';
import { sha256hex } from '../audit/records.ts';
import type { Principal } from '../identity/principal.ts';
import { isObject, type JsonObject } from '../jsonrpc.ts';
import type { CredentialRequest } from './types.ts';

export interface CallToCredential {
  readonly callId: string;
  readonly principal: Principal;
  readonly sessionKey: string;
  readonly upstream: string;
  readonly method: string;
  /** The upstream's own tool name, for a `tools/call`. */
  readonly tool?: string;
  /** The params as they go upstream. */
  readonly params: JsonObject | undefined;
  readonly signal?: AbortSignal;
  /** The caller's verified bearer token, for a token-exchange backend's subject token only. */
  readonly subjectToken?: string;
}

/**
 * What a credential for this call is bound to. The argument hash is the
 * SHA-256 of the RFC 8785 canonical `arguments` the upstream receives (`{}`
 * when there are none), so the upstream can recompute it. The caller's own
 * token goes only to a token-exchange backend, as the subject token it sends
 * to the authorization server; never upstream.
 */
export function credentialRequest(call: CallToCredential): CredentialRequest {
  const isToolCall = call.method === 'tools/call' && call.tool !== undefined;
  const args = isToolCall && isObject(call.params?.arguments) ? call.params.arguments : {};
  return {
    principal: call.principal.id,
    subject: call.principal.user ?? call.principal.workload ?? call.principal.id,
    ...(call.principal.user && call.principal.issuer ? { subjectIssuer: call.principal.issuer } : {}),
    upstream: call.upstream,
    ...(isToolCall ? { tool: call.tool, argsHash: sha256hex(canonicalize(args)) } : {}),
    sessionKey: call.sessionKey,
    callId: call.callId,
    ...(call.signal ? { signal: call.signal } : {}),
    ...(call.subjectToken ? { subjectToken: call.subjectToken } : {}),
  };
}
