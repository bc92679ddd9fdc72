import { findPolicySet } from '../audit/policy-set-lookup.ts';
import { parseCommandArgs, required } from './args.ts';
import { auditSetupFromConfig, withStore } from './audit-store.ts';

/**
 * `portcullis audit policy --config FILE [--hash sha256:…] [--json]`: the exact
 * policies a decision's `policySetHash` names, as the log recorded them when
 * the set went live (the last such set without --hash), checked against the
 * entry. Prints Cedar, each policy headed by its id; `--json` the whole record.
 */
export async function policyCommand(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(args, {
    config: { type: 'string' },
    hash: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  const setup = auditSetupFromConfig(required(values.config, '--config'));
  const found = await withStore(setup, (store) => findPolicySet(store, values.hash));
  if (values.json) {
    process.stdout.write(`${JSON.stringify(found)}\n`);
    return 0;
  }
  const lines = [
    `// policy set ${found.policySetHash}: ${found.event} ${new Date(found.time).toISOString()}, audit entry ${found.index}`,
    `// files: ${found.sets.live.files.join(', ') || '-'}`,
  ];
  for (const p of found.sets.live.policies) lines.push('', `// ${p.id}`, p.text);
  if (found.sets.shadow)
    lines.push('', `// shadow set: ${found.sets.shadow.policies.length} policies (see --json)`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
