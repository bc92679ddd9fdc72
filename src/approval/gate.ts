import { PortcullisError } from '../errors.ts';
import type { ApprovalService, CallToApprove } from './service.ts';
import type { Approval } from './types.ts';
import type { HeldCalls } from './wakeups.ts';

export interface HoldOptions {
  /** The call's own: a client that cancels or goes away stops waiting (its approval stays usable by a retry). */
  readonly signal: AbortSignal;
  /** How long this call may wait before it ends with ERR_APPROVAL_PENDING. */
  readonly holdMs: number;
  readonly keepAliveMs: number;
  /** Tells the waiting client the call is alive (a progress notification or an SSE comment). */
  readonly keepAlive: (approvalId: string, waitedMs: number) => void;
  readonly now: () => number;
  /**
   * Runs once a grant is in hand, before it is used: decides the call again
   * with the approval and throws to refuse it (the grant then stays unused).
   * What it returns is recorded with the consumption.
   */
  readonly beforeUse: (a: Approval) => Record<string, unknown> | Promise<Record<string, unknown>>;
}

/**
 * Holds a call until an approval for exactly it is granted, then uses that
 * approval (once). Ends the call, each with its code: denied, expired,
 * abandoned by a gateway that shut down, still pending when the hold ran out
 * (the client may retry the identical call to use a later grant), or too many
 * calls waiting already.
 */
export async function holdForApproval(
  approvals: ApprovalService,
  held: HeldCalls,
  call: CallToApprove,
  opts: HoldOptions,
): Promise<Approval> {
  // A used-up approval raced away by an identical call sends this one round again, to wait on its own.
  for (let round = 0; round < 3; round++) {
    let a = await approvals.open(call);
    if (a.status === 'pending') a = await wait(approvals, held, call, a, opts);
    if (a.status === 'granted') {
      const decided = await opts.beforeUse(a);
      if (await approvals.consume(a, { callId: call.callId, session: call.session }, decided)) return a;
      continue;
    }
    if (a.status === 'consumed') continue;
    throw endedWith(a);
  }
  throw new PortcullisError('ERR_APPROVALS_BUSY', 'identical calls keep using the approvals granted');
}

async function wait(
  approvals: ApprovalService,
  held: HeldCalls,
  call: CallToApprove,
  a: Approval,
  opts: HoldOptions,
): Promise<Approval> {
  if (!held.admit(call.principal))
    throw new PortcullisError('ERR_APPROVALS_BUSY', `too many held calls (principal ${call.principal})`, {
      publicData: { approvalId: a.id },
    });
  const started = opts.now();
  const timer = setInterval(() => opts.keepAlive(a.id, opts.now() - started), opts.keepAliveMs);
  try {
    return await approvals.waitFor(a.id, { signal: opts.signal, until: started + opts.holdMs });
  } finally {
    clearInterval(timer);
    held.release(call.principal);
  }
}

function endedWith(a: Approval): PortcullisError {
  const data = { approvalId: a.id };
  switch (a.status) {
    case 'pending':
      return new PortcullisError('ERR_APPROVAL_PENDING', `approval ${a.id} still pending`, {
        publicData: { ...data, expiresAt: new Date(a.expiresAt).toISOString(), retry: 'identical-call' },
      });
    case 'denied':
      return new PortcullisError('ERR_APPROVAL_DENIED', `approval ${a.id} denied by ${a.denial?.approver}`, {
        publicData: { ...data, ...(a.denial?.comment ? { comment: a.denial.comment } : {}) },
      });
    case 'expired':
      return new PortcullisError('ERR_APPROVAL_EXPIRED', `approval ${a.id} expired`, { publicData: data });
    default:
      return new PortcullisError('ERR_APPROVAL_ABANDONED', `approval ${a.id} is ${a.status}`, {
        publicData: data,
      });
  }
}
