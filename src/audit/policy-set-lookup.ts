import { createHash } from 'node:crypto';
import { isObject } from '../jsonrpc.ts';
import { policySetHash } from '../policy/engine/policy-set.ts';
import { AuditError } from './errors.ts';
import type { PolicySetTexts, StoredPolicySet } from './policy-set-records.ts';
import { lastMatchingEntries, signedMeta } from './search.ts';
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
  const found = await lastRecorded(store, hash);
  if (!found)
    throw new AuditError(
      'ERR_NOT_FOUND',
      hash ? `the log records no policy set ${hash}` : 'the log records no policy set',
    );
  const { entry, leaf } = found;
  const sets = await checkedTexts(store, entry.index, leaf);
  return { index: entry.index, time: leaf.time, event: leaf.event, policySetHash: leaf.policySetHash, sets };
}

/** Read backwards a page of the gateway's own entries at a time, stopping at the newest match. */
async function lastRecorded(
  store: AuditStore,
  hash: string | undefined,
): Promise<{ entry: StoredEntry; leaf: PolicySetLeaf } | undefined> {
  let end = (await store.head()).size;
  while (end > 0) {
    const page = await lastMatchingEntries(store, { principal: 'gateway' }, PAGE, end);
    if (page.length === 0) return undefined;
    for (const entry of page.reverse()) {
      if (signedMeta(entry).kind !== 'policy-set') continue;
      const leaf = leafOf(entry);
      if (leaf.event !== 'refused' && (hash === undefined || leaf.policySetHash === hash))
        return { entry, leaf };
    }
    end = page.at(-1)!.index;
  }
  return undefined;
}

const PAGE = 256;

const tamperedAt = (index: number, why: string) =>
  new AuditError('ERR_AUDIT_TAMPERED', `entry ${index}: ${why}; run audit verify`, { detail: { index } });

/** The leaf as a policy-set record, or ERR_AUDIT_TAMPERED when it is not shaped as one. */
function leafOf(entry: StoredEntry): PolicySetLeaf {
  const leaf = JSON.parse(entry.leaf.toString('utf8')) as Partial<PolicySetLeaf> | null;
  if (
    !leaf ||
    typeof leaf.event !== 'string' ||
    typeof leaf.time !== 'number' ||
    typeof leaf.policySetHash !== 'string' ||
    typeof leaf.policies?.blob !== 'string'
  )
    throw tamperedAt(entry.index, 'not a policy-set record');
  return leaf as PolicySetLeaf;
}

async function checkedTexts(store: AuditStore, index: number, leaf: PolicySetLeaf): Promise<PolicySetTexts> {
  const data = await store.blob(leaf.policies.blob);
  if (!data) throw tamperedAt(index, `the policy texts ${leaf.policies.blob} are missing`);
  if (createHash('sha256').update(data).digest('hex') !== leaf.policies.blob)
    throw tamperedAt(index, `the policy texts ${leaf.policies.blob} were changed`);
  const sets = parseTexts(data);
  if (!sets) throw tamperedAt(index, `the policy texts ${leaf.policies.blob} are not a policy set`);
  if (policySetHash(sets.live.policies) !== leaf.policySetHash)
    throw tamperedAt(index, `the live policies do not hash to ${leaf.policySetHash}`);
  if (leaf.shadow && (!sets.shadow || policySetHash(sets.shadow.policies) !== leaf.shadow.policySetHash))
    throw tamperedAt(index, `the shadow policies do not hash to ${leaf.shadow.policySetHash}`);
  return sets;
}

/** The blob as the texts of a live (and maybe shadow) set, or nothing when it is shaped otherwise. */
function parseTexts(data: Buffer): PolicySetTexts | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data.toString('utf8'));
  } catch {
    return undefined;
  }
  const isSet = (s: unknown): s is StoredPolicySet =>
    isObject(s) &&
    Array.isArray(s.files) &&
    s.files.every((f) => typeof f === 'string') &&
    Array.isArray(s.policies) &&
    s.policies.every((p) => isObject(p) && typeof p.id === 'string' && typeof p.text === 'string');
  if (!isObject(parsed) || !isSet(parsed.live) || (parsed.shadow !== undefined && !isSet(parsed.shadow)))
    return undefined;
  return parsed as unknown as PolicySetTexts;
}
