import { canonicalize } from './jcs.ts';
import { item, sha256hex } from './records.ts';
import type { AppendItem } from './store.ts';

/** A policy set as loaded: what names its version (`hash`), where it came from, and every policy's id and text. */
export interface PolicySetSnapshot {
  readonly hash: string;
  readonly files: readonly string[];
  readonly policies: readonly { readonly id: string; readonly text: string }[];
}

/**
 * A set went live (`loaded` at start, `reloaded`), or a reload was refused and
 * the set named stays live (`refused`, with why).
 */
export interface PolicySetChange {
  readonly event: 'loaded' | 'reloaded' | 'refused';
  readonly live: PolicySetSnapshot;
  readonly shadow?: PolicySetSnapshot | undefined;
  readonly problems?: readonly string[] | undefined;
}

/** One set as the blob beside the log holds it: its files, and every policy's id and text, in order. */
export interface StoredPolicySet {
  readonly files: readonly string[];
  readonly policies: readonly { readonly id: string; readonly text: string }[];
}

/** What the blob beside the log holds: the live set, and the shadow set if any. */
export interface PolicySetTexts {
  readonly live: StoredPolicySet;
  readonly shadow?: StoredPolicySet;
}

const stored = (s: PolicySetSnapshot): StoredPolicySet => ({
  files: [...s.files],
  policies: s.policies.map((p) => ({ id: p.id, text: p.text })),
});
// The files are in the blob: a set of any number of files still fits a leaf.
const summary = (s: PolicySetSnapshot) => ({
  policySetHash: s.hash,
  fileCount: s.files.length,
  policyCount: s.policies.length,
});

/**
 * The audit record of a policy set (`type: policy-set`): its hash and counts
 * in the leaf, its files and the policies' texts beside the log (a blob the leaf
 * commits to by hash), so a decision's `policySetHash` leads to the exact
 * rules that made it. A set that went live is filed under its hash as the
 * record's `callId`; a refused reload under `id`.
 */
export function policySetItem(change: PolicySetChange, time: number, id: string): AppendItem {
  const blob: PolicySetTexts = {
    live: stored(change.live),
    ...(change.shadow ? { shadow: stored(change.shadow) } : {}),
  };
  const data = Buffer.from(canonicalize(blob), 'utf8');
  const hash = sha256hex(data);
  const record = {
    v: 1,
    type: 'policy-set',
    event: change.event,
    time,
    callId: change.event === 'refused' ? id : change.live.hash,
    session: '',
    tool: '',
    principal: { id: 'gateway' },
    ...summary(change.live),
    ...(change.shadow ? { shadow: summary(change.shadow) } : {}),
    policies: { blob: hash, bytes: data.length },
    ...(change.problems ? { problems: boundedProblems(change.problems) } : {}),
  };
  return item(record, [{ hash, data }]);
}

/**
 * Problems name files, lines and the policies' own text: at most 20 of at most
 * 300 characters, whole characters only, so a refused set of any size or
 * script still makes a record (at most 20 × 300 × 6 bytes escaped, far under
 * MAX_LEAF) and a refused reload can never block the log.
 */
function boundedProblems(problems: readonly string[]): string[] {
  const cut = (p: string) => (p.length > PROBLEM_CHARS ? `${p.slice(0, PROBLEM_CHARS)}…` : p).toWellFormed();
  const kept = problems.slice(0, MAX_PROBLEMS).map(cut);
  return problems.length > MAX_PROBLEMS ? [...kept, `and ${problems.length - MAX_PROBLEMS} more`] : kept;
}

const MAX_PROBLEMS = 20;
const PROBLEM_CHARS = 300;
