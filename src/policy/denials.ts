import { Denial, ProtocolError } from '../errors.ts';
import type { Decision } from './decision.ts';

const detailOf = (d: Decision) => ({
  policySetHash: d.policySetHash,
  determiningPolicies: d.determiningPolicies,
  obligations: d.obligations,
  errors: d.errors,
});

export const policyDenied = (d: Decision): Denial =>
  new Denial(
    'ERR_POLICY_DENIED',
    `denied by policy (${d.determiningPolicies.join(', ') || 'no permit applies'})`,
    { detail: detailOf(d) },
  );

export const policyEngineFailed = (d: Decision): Denial =>
  new Denial('ERR_POLICY_ENGINE', `policy engine error: ${d.errors.join('; ')}`, {
    detail: detailOf(d),
  });

export const policyInvalid = (d: Decision): Denial =>
  new Denial('ERR_POLICY_INVALID', `policy set does not validate: ${d.errors.join('; ')}`, {
    detail: detailOf(d),
  });

/** An allow that carries a condition no stage can honour yet: fail closed, and say which. */
export const obligationUnmet = (d: Decision): Denial =>
  new Denial(
    d.obligations.includes('approval') ? 'ERR_APPROVAL_REQUIRED' : 'ERR_OBLIGATION_UNMET',
    `allowed only with ${d.obligations.join(', ')}, which is not available`,
    { publicData: { obligations: d.obligations }, detail: detailOf(d) },
  );

/**
 * A caller that has used as many distinct tools as its history holds may not
 * start on another: rules over `context.session.toolsUsed` would no longer see
 * it, so a long enough run of decoy calls could slip past them.
 */
export const sessionHistoryFull = (tool: string, limit: number): Denial =>
  new Denial(
    'ERR_SESSION_HISTORY_FULL',
    `caller already used ${limit} distinct tools lately; ${tool} is another`,
  );

/**
 * The history remembers as many callers as it may, and none of them is over:
 * a new caller is refused rather than one of them forgotten (which could
 * forget a sensitive read before its time, and let an exfiltration through).
 */
export const callerHistoryFull = (principalId: string, limit: number): Denial =>
  new Denial('ERR_CALLER_HISTORY_FULL', `history already holds ${limit} callers; ${principalId} is another`);

export const invalidArguments = (detail: string): ProtocolError =>
  new ProtocolError('ERR_INVALID_ARGUMENTS', `Invalid arguments: ${detail}`, { publicArgs: [detail] });
