import type { AttestationSummary } from '../attest/result.ts';
import type { PortcullisError } from '../errors.ts';
import type { Principal } from '../identity/principal.ts';
import type { JsonRpcRequest, JsonRpcResponse } from '../jsonrpc.ts';
import type { Injection } from '../pinning/results.ts';
import type { CallInput, ListenInput } from '../policy/call-input.ts';
import type { Decision } from '../policy/decision.ts';
import type { PolicyEngine } from '../policy/engine/engine.ts';
import type { MaskOutcome } from '../protect/service.ts';
import type { ListMethod } from '../protocol/methods.ts';
import type { DownstreamSession } from '../session.ts';
import type { ListedItem } from '../upstream/aggregate.ts';
import type { RelatedSink } from '../upstream/connection.ts';
import type { Route } from './route-types.ts';

export type { Decision } from '../policy/decision.ts';

/**
 * One client request on its way through the pipeline. Stages read it and add
 * to it: every value one stage hands to a later one is a field declared here.
 */
export interface CallContext {
  /** Gateway-wide unique id of this call (for logs and audit). */
  readonly callId: string;
  readonly startedAt: number;
  /** A deep snapshot of what the client sent: what is decided on is what is forwarded. */
  readonly request: Readonly<JsonRpcRequest>;
  readonly session: DownstreamSession;
  /** Where progress and server-to-client requests for this call go. */
  readonly sink: RelatedSink;
  /**
   * The HTTP headers the request came with (lower-case names), when it came
   * over HTTP in the modern era: the param-headers stage checks `Mcp-Param-*` against the body.
   */
  readonly requestHeaders?: Readonly<Record<string, string | string[] | undefined>>;
  /**
   * The bearer token this request came with, verified by the listener: only a
   * token-exchange backend reads it (as its subject token). Never logged, audited or forwarded.
   */
  readonly subjectToken?: string;
  /** Aborted when the client cancels or goes away. */
  readonly signal: AbortSignal;
  /** Who is calling; starts as the session's (verified by the transport), re-checked by the identify stage on every call. */
  principal: Principal;
  route?: Route;
  /** `Mcp-Param-*` headers for HTTP upstreams (param-headers stage): only those the tool declares, with the body's values. */
  forwardHeaders?: Readonly<Record<string, string>>;
  /** What policy decides a call to one target on (validate stage, for authorize and the audit). */
  callInput?: CallInput;
  /** What policy decides a `subscriptions/listen` on (validate stage, for authorize, forward and the audit). */
  listenInput?: ListenInput;
  /** The caller signed this request and the signature held (request-signature stage): policy's `context.request.signed`. */
  requestSigned?: boolean;
  /** The authorization decision for this call (policy stage). */
  decision?: Decision;
  /**
   * The policy set a gateway list is filtered by (authorize stage): the one its
   * decision record names, even if a reload came before the list was answered.
   */
  listPolicy?: PolicyEngine;
  /** Index of this call's decision record in the audit log, once committed (audit-decision stage, for the outcome record). */
  decisionIndex?: number;
  /**
   * The decision record's commit (audit-decision stage): its index, or the
   * reason it failed. decision-stable waits for it before forward, the outcome
   * record before it links to it.
   */
  decisionCommit?: Promise<number>;
  /** The approval this call used (approval stage); recorded in the audit. */
  approvalId?: string;
  /** Set while the approval stage holds the call: a gateway shutting down lets such calls answer first. */
  held?: boolean;
  /** The break-glass window that let this call through (authorize stage); recorded in the audit. */
  breakGlassId?: string;
  /** The lease of the credential this call was given (credentials stage); recorded in the audit. */
  leaseId?: string;
  /** Headers carrying the call's brokered credential (credentials stage), sent upstream by forward; never logged. */
  upstreamCredential?: { readonly headers: Readonly<Record<string, string>> };
  /** A gateway list, every upstream's items unfiltered (forward stage): the filter-list stage answers with what the caller may see. */
  listed?: { readonly method: ListMethod; readonly items: readonly ListedItem[] };
  response?: JsonRpcResponse;
  /** Instructions injected for the model that the tool result carried (inspect-result stage); the caller is tainted. */
  injection?: Injection;
  /** How the answer was checked for secrets and personal data (mask stage): the mode, the outcome, type -> count, never a value. */
  masked?: MaskOutcome;
  /**
   * Whether the upstream answered the request forwarded to it: `no-answer` (a
   * timeout, a cancel, a lost connection) means it may have acted all the same.
   * Unset when nothing was forwarded.
   */
  upstream?: 'answered' | 'no-answer';
  /** The signature the result went out with (attest stage): the outcome record keeps its hash and key. */
  attestation?: AttestationSummary;
  /** The signed result and its canonical hash (attest stage), which the outcome record reuses while it is what goes out. */
  sentResult?: { readonly result: unknown; readonly hash: string };
  /** Set when a stage ended the call or something failed; never sent as-is. */
  error?: PortcullisError;
  /** Milliseconds spent in each stage. */
  readonly timings: Record<string, number>;
}
