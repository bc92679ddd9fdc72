import type { PortcullisError } from '../errors.ts';
import type { Principal } from '../identity/principal.ts';
import type { JsonRpcRequest, JsonRpcResponse } from '../jsonrpc.ts';
import type { DownstreamSession } from '../session.ts';
import type { RelatedSink } from '../upstream/connection.ts';
import type { Route } from './route-types.ts';

/** One client request on its way through the pipeline. Stages read it and add to it. */
export interface CallContext {
  /** Gateway-wide unique id of this call (for logs and audit). */
  readonly callId: string;
  readonly startedAt: number;
  /** A deep snapshot of what the client sent: what is decided on is what is forwarded. */
  readonly request: Readonly<JsonRpcRequest>;
  readonly session: DownstreamSession;
  /** Where progress and server-to-client requests for this call go. */
  readonly sink: RelatedSink;
  /** `Mcp-Param-*` headers for HTTP upstreams: only those the tool declares, with the body's values. */
  readonly forwardHeaders?: Readonly<Record<string, string>>;
  /** Aborted when the client cancels or goes away. */
  readonly signal: AbortSignal;
  /**
   * The transport checked this request's principal for expiry and revocation
   * just before the pipeline (the HTTP listener does, to answer 401): the
   * first identify stage need not repeat it. The check before forwarding always runs.
   */
  readonly identityChecked?: boolean;
  /** Who is calling; starts as the session's, refreshed by the identify stage on every call. */
  principal: Principal;
  route?: Route;
  /** The authorization decision for this call (policy stage). */
  decision?: Decision;
  response?: JsonRpcResponse;
  /**
   * Whether the upstream answered the request forwarded to it: `no-answer` (a
   * timeout, a cancel, a lost connection) means it may have acted all the same.
   * Unset when nothing was forwarded.
   */
  upstream?: 'answered' | 'no-answer';
  /** Set when a stage ended the call or something failed; never sent as-is. */
  error?: PortcullisError;
  /** Milliseconds spent in each stage. */
  readonly timings: Record<string, number>;
}

/** What the policy engine decided for one call, with enough to explain and audit it. */
export interface Decision {
  readonly effect: 'allow' | 'deny';
  /** Ids of the policies that determined the effect. */
  readonly determiningPolicies: readonly string[];
  /** Hash of the policy set that decided (which version of the rules). */
  readonly policySetHash: string;
  /** Conditions an allow carries (`approval`, `mask`); a stage that cannot honour one denies. */
  readonly obligations: readonly string[];
  readonly errors: readonly string[];
}
