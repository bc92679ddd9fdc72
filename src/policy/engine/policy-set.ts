import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { PolicyError } from '../errors.ts';
import { cedar, type DetailedError } from './cedar.ts';
import { attributesNamedIn, type ContextReads, contextReadsOf } from './reads.ts';
import { membershipTargetsOf, namedUidsOf, type ScopeConstraint, scopeConstraint } from './scope.ts';

/** Which actions a policy's scope can match: every action, or these ids (and their members). */
export type ActionScope = { all: true } | { all: false; ids: readonly string[] };

export interface LoadedPolicy {
  readonly id: string;
  readonly text: string;
  readonly effect: 'permit' | 'forbid';
  readonly actions: ActionScope;
  /** The principal scope; slicing leaves the policy out only when this provably cannot match. */
  readonly principal: ScopeConstraint;
  readonly resource: ScopeConstraint;
  /** `@obligation("approval, mask")`: conditions an allow determined by this policy carries. */
  readonly obligations: readonly string[];
  /** `@approvals("2")`: distinct approvers an `approval` obligation needs (1 when unset). */
  readonly approvers: number;
  /** `file:line` where it starts. */
  readonly source: string;
  /** Reads context that discovery cannot know (arguments, reason, approval): needs partial evaluation there. */
  readonly readsCallContext: boolean;
  /** Mentions `getTag`/`hasTag` anywhere in its text (conservative): needs the principal's tags. */
  readonly readsTags: boolean;
  /** The context attributes its conditions read; the others need not be sent. */
  readonly contextReads: ContextReads;
  /** Every attribute name its conditions access (`true`: not understood, so all); entity attributes beyond these need not be sent. */
  readonly attributes: ReadonlySet<string> | true;
  /** The entities it can test membership in (`true`: any); other parents need not be sent. */
  readonly memberships: ReadonlySet<string> | true;
  /**
   * Every entity uid it writes out anywhere (scope or conditions), as `entityKey`s: a policy
   * that does not write out a tool's uid (nor its action's) cannot tell that tool from
   * another by its uid, only by what the entities hold (see `PolicyEngine.mayUse`).
   */
  readonly namedUids: ReadonlySet<string>;
}

export interface PolicySource {
  readonly policies: readonly LoadedPolicy[];
  /** SHA-256 over the policies' ids and texts, in order: names the version of the rules. */
  readonly hash: string;
  readonly files: readonly string[];
}

export function loadPolicyFiles(paths: readonly string[], baseDir: string): PolicySource {
  const files = paths.map((p) => resolve(baseDir, p));
  const texts = files.map((file) => {
    try {
      return { file, text: readFileSync(file, 'utf8') };
    } catch (err) {
      throw new PolicyError('ERR_POLICY_INVALID', `cannot read policy file ${file}`, [String(err)]);
    }
  });
  return parsePolicyTexts(texts);
}

export function parsePolicyTexts(files: readonly { file: string; text: string }[]): PolicySource {
  const policies: LoadedPolicy[] = [];
  const errors: string[] = [];
  for (const { file, text } of files) {
    const parts = cedar.policySetTextToParts(text);
    if (parts.type === 'failure') {
      errors.push(...parts.errors.map((e) => located(file, text, e)));
      continue;
    }
    if (parts.policy_templates.length > 0) errors.push(`${file}: policy templates are not supported`);
    let from = 0;
    parts.policies.forEach((policyText, i) => {
      const offset = Math.max(text.indexOf(firstToken(policyText), from), 0);
      from = offset + 1;
      const loaded = describePolicy(policyText, `${basename(file)}#${i}`, `${file}:${lineOf(text, offset)}`);
      if (typeof loaded === 'string') errors.push(loaded);
      else policies.push(loaded);
    });
  }
  const seen = new Set<string>();
  for (const p of policies) {
    if (seen.has(p.id)) errors.push(`${p.source}: duplicate policy id "${p.id}"`);
    seen.add(p.id);
  }
  if (errors.length > 0) throw new PolicyError('ERR_POLICY_INVALID', 'policy files do not parse', errors);
  return { policies, hash: policySetHash(policies), files: files.map((f) => f.file) };
}

/** A set's version: SHA-256 over each policy's id and text, in order (what the audit log's policy-set records name). */
export function policySetHash(policies: readonly { readonly id: string; readonly text: string }[]): string {
  const hash = createHash('sha256');
  for (const p of policies) hash.update(`${p.id}\0${p.text}\0`);
  return `sha256:${hash.digest('hex')}`;
}

function describePolicy(text: string, fallbackId: string, source: string): LoadedPolicy | string {
  const json = cedar.policyToJson(text);
  if (json.type === 'failure') return `${source}: ${json.errors.map((e) => e.message).join('; ')}`;
  const { effect, action, principal, resource, conditions, annotations = {} } = json.json;
  const obligations = (annotations.obligation ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = obligations.filter((o) => !OBLIGATIONS.includes(o));
  if (unknown.length > 0)
    return `${source}: unknown obligation "${unknown[0]}" (known: ${OBLIGATIONS.join(', ')})`;
  const approvers = approversOf(annotations.approvals, obligations);
  if (typeof approvers === 'string') return `${source}: ${approvers}`;
  let actions: ActionScope;
  if (action.op === 'All') actions = { all: true };
  else if ('entity' in action) actions = { all: false, ids: [uidId(action.entity)] };
  else if ('entities' in action) actions = { all: false, ids: action.entities.map(uidId) };
  else return `${source}: unsupported action scope`;
  return {
    id: annotations.id ?? fallbackId,
    text,
    effect,
    actions,
    principal: scopeConstraint(principal),
    resource: scopeConstraint(resource),
    obligations,
    approvers,
    source,
    readsCallContext: CALL_CONTEXT.test(text),
    readsTags: TAGS.test(text),
    contextReads: contextReadsOf(conditions),
    attributes: attributesNamedIn(conditions),
    memberships: membershipTargetsOf(json.json),
    namedUids: namedUidsOf(json.json),
  };
}

/** The obligations a stage honours: any other name is a load error, not a silent denial. */
export const OBLIGATIONS: readonly string[] = ['approval', 'confirm', 'mask'];

/** At most this many distinct approvers for one call: more is a typo, not a control. */
export const MAX_APPROVERS = 5;

function approversOf(annotation: string | undefined, obligations: readonly string[]): number | string {
  if (annotation === undefined) return 1;
  if (!obligations.includes('approval')) return '@approvals needs @obligation("approval") on the same policy';
  if (!/^[1-9][0-9]*$/.test(annotation.trim()) || Number(annotation) > MAX_APPROVERS)
    return `@approvals must be a whole number from 1 to ${MAX_APPROVERS}, not "${annotation}"`;
  return Number(annotation);
}

const TAGS = /\b(?:getTag|hasTag)\b/;

/** Any `context` use but the attributes a list request knows as well as a call does (conservative). */
const CALL_CONTEXT = /\bcontext\b(?!\s*\.\s*(?:method|time|network|session)\b)/;

const uidId = (uid: unknown): string =>
  String(
    (uid as { id?: unknown; __entity?: { id?: unknown } }).id ??
      (uid as { __entity?: { id?: unknown } }).__entity?.id,
  );

const firstToken = (policyText: string): string => policyText.slice(0, 24);

function lineOf(text: string, offset: number): number {
  return text.slice(0, offset).split('\n').length;
}

/** An engine error as `file:line:col: message (label)`. */
function located(file: string, text: string, e: DetailedError): string {
  const loc = e.sourceLocations?.[0];
  if (!loc) return `${file}: ${e.message}`;
  const before = text.slice(0, loc.start).split('\n');
  const where = `${file}:${before.length}:${(before.at(-1)?.length ?? 0) + 1}`;
  return `${where}: ${e.message}${loc.label ? ` (${loc.label})` : ''}`;
}
