import { createHash } from 'node:crypto';
import { AuditError } from './errors.ts';
import { type PolicySetTexts, policySetHashOf } from './policy-set-records.ts';
import { matchingEntries, signedMeta } from './search.ts';
import type { AuditStore, StoredEntry } from './store.ts';

/** A policy set as the log holds it: the entry that recorded it and the texts beside the log, checked. */
export interface FoundPolicySet {
  readonly index: number;
  readonly time: number;
  readonly event: string;
  readonly policySetHash: string;
  readonly sets: PolicySetTexts;
}

interface PolicySetLeaf {
  readonly time: number;
  readonly event: string;
  readonly policySetHash: string;
  readonly shadow?: { readonly policySetHash: string };
  readonly policies: { readonly blob: string };
}

/**
 * The latest record of the set named `hash` (or of the last set that went live,
 * when none is named), its texts read from beside the log and checked: they
 * must hash to what the entry commits to, and the policies in them to the set's
 * hash, or ERR_AUDIT_TAMPERED. ERR_NOT_FOUND when the log names no such set.
 */
export async function findPolicySet(store: AuditStore, hash?: string): Promise<FoundPolicySet> {
  const { size } = await store.head();
  let found: { entry: StoredEntry; leaf: PolicySetLeaf } | undefined;
  for (const entry of await matchingEntries(store, { principal: 'gateway' }, 0, size)) {
    if (signedMeta(entry).kind !== 'policy-set') continue;
    const leaf = JSON.parse(entry.leaf.toString('utf8')) as PolicySetLeaf;
    if (leaf.event === 'refused') continue;
    if (hash === undefined || leaf.policySetHash === hash) found = { entry, leaf };
  }
  if (!found)
    throw new AuditError(
      'ERR_NOT_FOUND',
      hash ? `the log records no policy set ${hash}` : 'the log records no policy set',
    );
  const { entry, leaf } = found;
  const sets = await checkedTexts(store, entry.index, leaf);
  return { index: entry.index, time: leaf.time, event: leaf.event, policySetHash: leaf.policySetHash, sets };
}

async function checkedTexts(store: AuditStore, index: number, leaf: PolicySetLeaf): Promise<PolicySetTexts> {
  const tampered = (why: string) =>
    new AuditError('ERR_AUDIT_TAMPERED', `entry ${index}: ${why}; run audit verify`, { detail: { index } });
  const data = await store.blob(leaf.policies.blob);
  if (!data) throw tampered(`the policy texts ${leaf.policies.blob} are missing`);
  if (createHash('sha256').update(data).digest('hex') !== leaf.policies.blob)
    throw tampered(`the policy texts ${leaf.policies.blob} were changed`);
  const sets = JSON.parse(data.toString('utf8')) as PolicySetTexts;
  if (policySetHashOf(sets.live.policies) !== leaf.policySetHash)
    throw tampered(`the live policies do not hash to ${leaf.policySetHash}`);
  if (leaf.shadow && (!sets.shadow || policySetHashOf(sets.shadow.policies) !== leaf.shadow.policySetHash))
    throw tampered(`the shadow policies do not hash to ${leaf.shadow.policySetHash}`);
  return sets;
}
