import type { LoadedConfig } from '../config/load.ts';
import type { Logger } from '../observability/log.ts';
import type { Stage } from '../pipeline/runner.ts';
import { authorizeStage } from '../pipeline/stages/authorize.ts';
import { validateStage } from '../pipeline/stages/validate.ts';
import type { Aggregator } from '../upstream/aggregate.ts';
import { networkOf } from './facts/network.ts';
import { PolicyService } from './service.ts';

/** The validate and authorize stages, with the aggregator's list hook feeding and filtering through policy. */
export function policyStages(
  agg: Aggregator,
  loaded: LoadedConfig,
  log: Logger,
  now?: () => number,
): Stage[] {
  const policy = new PolicyService(loaded.config.policy, loaded.baseDir, { log, ...(now ? { now } : {}) });
  if (loaded.config.policy.watch) policy.watch();
  agg.listFilter = (session, method, items) =>
    policy.filterList(session.principal, method, items, networkOf(session));
  return [validateStage(agg, policy), authorizeStage(policy)];
}
