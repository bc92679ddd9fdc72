/** What the policy engine decided for one call, with enough to explain and audit it. */
export interface Decision {
  readonly effect: 'allow' | 'deny';
  /** Ids of the policies that determined the effect. */
  readonly determiningPolicies: readonly string[];
  /** Hash of the policy set that decided (which version of the rules). */
  readonly policySetHash: string;
  /** Conditions an allow carries (`approval`, `mask`); a stage that cannot honour one denies. */
  readonly obligations: readonly string[];
  /** With an `approval` obligation: how many distinct approvers must grant it (the policies' `@approvals`, highest wins). */
  readonly approvers?: number;
  readonly errors: readonly string[];
  /**
   * Set on the allow a break-glass window gives a call that would have been
   * refused: the refusal's code and the decision that refused it.
   */
  readonly overridden?: {
    readonly code: string;
    readonly determiningPolicies: readonly string[];
    readonly obligations: readonly string[];
  };
}
