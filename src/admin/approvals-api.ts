import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApproverRole } from '../approval/approvers.ts';
import { type CallbackDecision, type CallbackVerifiers, verifyCallback } from '../approval/callback.ts';
import type { Verdict } from '../approval/service.ts';
import type { Approval, ApproverAct } from '../approval/types.ts';
import { approvalDetail, approvalSummary } from '../approval/view.ts';
import { PortcullisError } from '../errors.ts';
import type { Gateway } from '../gateway.ts';
import type { Logger } from '../observability/log.ts';
import { type AdminCaller, adminRefusal, decideAdminAction } from '../policy/admin.ts';
import { networkFacts } from '../policy/facts/network.ts';
import { ADMIN_ACTION, type AdminAction } from '../policy/model/cedar-schema.ts';
import { readBodyBytes } from '../transport/body.ts';
import { header, sendJson } from '../transport/http-reply.ts';
import { authenticateAdmin, recordCallbackRefusal, sendAdminError } from './admin-reply.ts';
import { decisionBody } from './decision-body.ts';
import { type ApprovalsRoute, approvalsRoute } from './routes.ts';

/** Decisions and callbacks are small: a comment, a hash, an id. */
export const MAX_ADMIN_BODY_BYTES = 64 * 1024;

export interface ApprovalsApiDeps {
  readonly gateway: Pick<Gateway, 'identity' | 'recheck' | 'audit' | 'approvals' | 'policy'>;
  readonly approvers: ApproverRole;
  /** One per `approvals.callbacks` source; its nonces live in the shared state store. */
  readonly callbacks: CallbackVerifiers;
  readonly now: () => number;
  readonly log: Logger;
}

/** Who asks, and the request they ask with (for its peer address and body). */
interface Asker {
  readonly caller: AdminCaller;
  readonly req: IncomingMessage;
}

interface DecisionRequest {
  readonly id: string;
  readonly verdict: Verdict;
  readonly act: ApproverAct;
  readonly argsHash?: string;
}

/**
 * The approvals API of the admin listener, JSON in and out: list, show,
 * approve and deny, for callers the gateway's identity verifies who hold the
 * approver role and whom policy permits the action; and decisions POSTed back
 * by chat bots, signed with their source's secret. Every decision goes
 * through the approval service, as the CLI's do, with the same state, audit
 * records and wake-ups.
 */
export class ApprovalsApi {
  readonly #d: ApprovalsApiDeps;

  constructor(deps: ApprovalsApiDeps) {
    this.#d = deps;
  }

  /** Answers one request under `/approvals`; a refusal is `{error: {code, message}}` with the table's status. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    try {
      const route = approvalsRoute(req.method, url);
      if (route.kind === 'callback') return sendJson(res, 200, await this.#callback(req, route.source));
      const principal = await authenticateAdmin(this.#d.gateway, req, res);
      const asker: Asker = { caller: { kind: 'principal', principal }, req };
      return sendJson(res, 200, await this.#serve(route, asker));
    } catch (err) {
      req.resume();
      sendAdminError(res, err, this.#d.log);
    }
  }

  async #serve(route: Exclude<ApprovalsRoute, { kind: 'callback' }>, asker: Asker): Promise<unknown> {
    if (route.kind === 'decide') return this.#decideRequest(route, asker);
    this.#approverId(asker.caller);
    const { approvals } = this.#d.gateway;
    if (route.kind === 'show') {
      const a = await approvals.get(route.id);
      if (!a) throw new PortcullisError('ERR_APPROVAL_UNKNOWN', `no approval ${route.id}`);
      this.#authorize(asker, ADMIN_ACTION.show, a);
      return { approval: approvalDetail(a) };
    }
    this.#authorize(asker, ADMIN_ACTION.list);
    const listed = await approvals.list(route.all ? undefined : ['pending', 'granted']);
    // A caller sees only the approvals it may look at, as a tool list shows only the tools it may use.
    return {
      approvals: listed.filter((a) => !this.#refusal(asker, ADMIN_ACTION.show, a)).map(approvalSummary),
    };
  }

  /** `POST /approvals/ID/approve|deny`: the role (a refusal recorded), then the body, then the decision. */
  async #decideRequest(route: Extract<ApprovalsRoute, { kind: 'decide' }>, asker: Asker): Promise<unknown> {
    await this.#recorded(route.id, this.#act(asker.caller, ''), () => this.#approverId(asker.caller));
    if (!/^application\/json\b/i.test(header(asker.req.headers, 'content-type') ?? ''))
      throw new PortcullisError('ERR_UNSUPPORTED_MEDIA_TYPE', 'an approver decision is JSON');
    const body = decisionBody(await readBodyBytes(asker.req, MAX_ADMIN_BODY_BYTES), route.verdict);
    const act = this.#act(asker.caller, body.comment);
    return this.#decide(asker, { id: route.id, verdict: route.verdict, act, argsHash: body.argsHash });
  }

  /** A signed decision from a chat bot: verified, its approver in the role, then decided like any other. */
  async #callback(req: IncomingMessage, source: string): Promise<unknown> {
    const body = await readBodyBytes(req, MAX_ADMIN_BODY_BYTES);
    const { approvals, audit } = this.#d.gateway;
    let decision: CallbackDecision;
    try {
      decision = await verifyCallback(this.#d.callbacks, { source, headers: req.headers, body });
    } catch (err) {
      await recordCallbackRefusal({ approvals, audit, known: this.#d.callbacks.has(source) }, req, source, {
        err,
        at: this.#d.now(),
      });
      throw err;
    }
    const caller: AdminCaller = { kind: 'callback', source, approver: decision.approver };
    const act = this.#act(caller, decision.comment);
    await this.#recorded(decision.approvalId, act, () => this.#approverId(caller));
    const verdict = decision.decision === 'approve' ? 'grant' : 'deny';
    return this.#decide({ caller, req }, { id: decision.approvalId, verdict, act });
  }

  /** A decision by an approver the role allows: policy first, then the approval service (which records its refusals). */
  async #decide(asker: Asker, d: DecisionRequest): Promise<unknown> {
    const { approvals } = this.#d.gateway;
    const action = d.verdict === 'grant' ? ADMIN_ACTION.approve : ADMIN_ACTION.deny;
    const a = await approvals.get(d.id);
    // An unknown id goes on to the service, which refuses it as unknown and records that.
    if (a) await this.#recorded(d.id, d.act, () => this.#authorize(asker, action, a, d.act.comment));
    const decided = await approvals.decide(d.id, d.verdict, d.act, d.argsHash);
    return {
      id: decided.id,
      status: decided.status,
      grants: decided.grants.length,
      required: decided.required,
    };
  }

  #act(caller: AdminCaller, comment: string): ApproverAct {
    const at = this.#d.now();
    if (caller.kind === 'callback') return { approver: caller.approver, channel: 'webhook', comment, at };
    const { id, user } = caller.principal;
    // The user too: the caller's own user through another workload is still the caller.
    return { approver: id, ...(user ? { user } : {}), channel: 'admin-api', comment, at };
  }

  /** Runs a check; a refusal it throws is recorded against the approval before it is answered. */
  async #recorded(id: string, act: ApproverAct, check: () => unknown): Promise<void> {
    try {
      check();
    } catch (err) {
      if (err instanceof PortcullisError) await this.#d.gateway.approvals.refused(id, act, err.code);
      throw err;
    }
  }

  /** The caller's approver id, or ERR_APPROVER_NOT_ALLOWED. */
  #approverId(caller: AdminCaller): string {
    return caller.kind === 'principal'
      ? this.#d.approvers.identity(caller.principal)
      : this.#d.approvers.named(caller.approver);
  }

  #authorize(asker: Asker, action: AdminAction, a?: Approval, comment?: string): void {
    const refusal = this.#refusal(asker, action, a, comment);
    if (refusal) throw refusal;
  }

  #refusal(asker: Asker, action: AdminAction, a?: Approval, comment?: string) {
    const decision = decideAdminAction(this.#d.gateway.policy, {
      caller: asker.caller,
      // Every caller that gets this far holds the role (`#approverId` refused the rest).
      approver: true,
      action,
      ...(a ? { approval: { id: a.id, tool: a.tool, principal: a.principal, required: a.required } } : {}),
      ...(comment ? { comment } : {}),
      network: networkFacts(asker.req.socket.remoteAddress),
      now: this.#d.now(),
    });
    return adminRefusal(decision);
  }
}
