import { PortcullisError } from '../errors.ts';
import type { Principal } from '../identity/principal.ts';
import type { ApprovalsConfig, ApproverIdentity } from './config.ts';

/** The approver role from config: which verified identities and which CLI operators may decide. */
export class ApproverRole {
  private readonly operators: ReadonlySet<string>;
  private readonly identities: readonly ApproverIdentity[];

  constructor(cfg: ApprovalsConfig['approvers']) {
    this.operators = new Set(cfg.operators);
    this.identities = cfg.identities;
  }

  /** The approver id of a CLI operator (`operator:NAME`), or ERR_APPROVER_NOT_ALLOWED. */
  operator(name: string | undefined): string {
    if (!name) throw new PortcullisError('ERR_USAGE', 'name the approver: --as NAME');
    if (!this.operators.has(name))
      throw new PortcullisError(
        'ERR_APPROVER_NOT_ALLOWED',
        `"${name}" is not in approvals.approvers.operators`,
      );
    return `operator:${name}`;
  }

  /** The approver id of a verified principal (its principal id), or ERR_APPROVER_NOT_ALLOWED. */
  identity(principal: Principal): string {
    if (principal.authMethod === 'none' || !this.identities.some((m) => matches(m, principal)))
      throw new PortcullisError('ERR_APPROVER_NOT_ALLOWED', `${principal.id} holds no approver role`);
    return principal.id;
  }

  /**
   * An approver known only by its id (`webhook:SOURCE:USER`, from a signed
   * callback): allowed only by an entry naming that principal, never by a
   * user, workload or claim entry, which speak of identities the gateway verified.
   */
  named(id: string): string {
    if (!this.identities.some((m) => 'principal' in m && m.principal === id))
      throw new PortcullisError('ERR_APPROVER_NOT_ALLOWED', `${id} holds no approver role`);
    return id;
  }
}

function matches(m: ApproverIdentity, p: Principal): boolean {
  if ('user' in m) return p.user === m.user;
  if ('workload' in m) return p.workload === m.workload;
  if ('principal' in m) return p.id === m.principal;
  const claim = p.claims[m.claim];
  return Array.isArray(claim) ? claim.includes(m.value) : claim === m.value;
}

/**
 * Whether an approver is the caller: the same principal, or an operator whose
 * name is the caller's user. The CLI's operator name is only as trusted as the
 * machine it runs on, which is why both names are compared.
 */
export function isSelfApproval(
  act: { approver: string; user?: string },
  caller: { principal: string; user?: string },
): boolean {
  const { approver } = act;
  if (approver === caller.principal) return true;
  if (act.user !== undefined && act.user === caller.user) return true;
  const name = approver.startsWith('operator:') ? approver.slice('operator:'.length) : undefined;
  return name !== undefined && (name === caller.user || name === caller.principal);
}
