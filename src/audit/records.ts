import { createHash, createHmac } from 'node:crypto';
import type { Principal } from '../identity/principal.ts';
import type { JsonObject, JsonRpcResponse } from '../jsonrpc.ts';
import type { CallInput, ListenInput, ReasonSource } from '../policy/call-input.ts';
import type { Decision } from '../policy/decision.ts';
import { requestTarget } from '../protocol/targets.ts';
import { canonicalize } from './jcs.ts';
import { metaOfRecord } from './meta.ts';
import type { AppendItem, Blob } from './store.ts';

/** Leaves stay well under the 65,535-byte limit of tlog-tiles entry bundles. */
export const MAX_LEAF = 60 * 1024;

export const sha256hex = (data: string | Uint8Array): string =>
  createHash('sha256').update(data).digest('hex');

/** Argument values as keyed hashes: the shape stays readable, the values do not. */
export function keyedValues(value: unknown, key: Buffer): unknown {
  if (Array.isArray(value)) return value.map((v) => keyedValues(v, key));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, keyedValues(v, key)]));
  }
  return `hmac-sha256:${createHmac('sha256', key).update(canonicalize(value)).digest('base64url')}`;
}

/** What a call's audit records are made of (the pipeline's call context is one). */
export interface AuditCall {
  readonly callId: string;
  readonly startedAt: number;
  readonly request: { readonly method: string; readonly params?: JsonObject | undefined };
  readonly session: { readonly key: string };
  readonly principal: Principal;
  /** What policy decided on (its reason, and where that came from). */
  readonly callInput?:
    | (Pick<CallInput, 'reason' | 'reasonSource'> & { readonly detected?: CallInput['detected'] })
    | undefined;
  readonly listenInput?: Pick<ListenInput, 'resources' | 'reason' | 'reasonSource'> | undefined;
  readonly decision?: Decision | undefined;
  readonly approvalId?: string | undefined;
  readonly breakGlassId?: string | undefined;
  readonly leaseId?: string | undefined;
  readonly response?: JsonRpcResponse | undefined;
  /** The caller signed the request and the signature held. */
  readonly requestSigned?: boolean | undefined;
  /** The signature the result went out with: its key and the hash of the result it covers. */
  readonly attestation?: { readonly kid: string; readonly resultHash: string } | undefined;
  /** A result's canonical hash already made (attest stage): used while `response.result` is that very result. */
  readonly sentResult?: { readonly result: unknown; readonly hash: string } | undefined;
  readonly error?: { readonly code: string } | undefined;
  /** `no-answer`: the upstream got the call but never answered; it may have acted. */
  readonly upstream?: 'answered' | 'no-answer' | undefined;
  /** Instructions injected in the result (the caller was tainted). */
  readonly injection?: { readonly score: number; readonly rules: readonly string[] } | undefined;
  /** How the answer was checked for secrets and personal data: type -> count, never a value. */
  readonly masked?:
    | {
        readonly mode: string | null;
        readonly outcome: string;
        readonly summary: Readonly<Record<string, number>>;
      }
    | undefined;
}

export interface RecordOptions {
  readonly hmacKey: Buffer;
  readonly clearArguments: readonly string[];
  readonly now: () => number;
}

function callFields(ctx: AuditCall) {
  // Only a method that targets a tool, prompt or resource names one: a `ping` with a `name` param does not.
  const target = requestTarget(ctx.request.method, ctx.request.params) ?? '';
  const p = ctx.principal;
  // These come from callers; a lone surrogate in one must not keep a refused call out of the log.
  const text = (s: string): string => s.toWellFormed();
  return {
    callId: ctx.callId,
    session: text(ctx.session.key),
    method: text(ctx.request.method),
    tool: text(target),
    principal: {
      id: text(p.id),
      authMethod: p.authMethod,
      ...(p.workload ? { workload: text(p.workload) } : {}),
      ...(p.user ? { user: text(p.user) } : {}),
      ...(p.tokenId ? { tokenId: text(p.tokenId) } : {}),
    },
  };
}

/** The record as a leaf, with the columns stored beside it taken from the record itself. */
/** A record as a log entry: its canonical JSON is the signed leaf. */
export function item(record: Record<string, unknown>, blobs: Blob[] = []): AppendItem {
  const meta = metaOfRecord(record);
  if (!meta) throw new Error(`not an audit record: ${String(record.type)}`);
  return { leaf: Buffer.from(canonicalize(record), 'utf8'), meta, blobs };
}

/** Written before forwarding: who, what, with which arguments, and what was decided. */
export function decisionRecord(ctx: AuditCall, opts: RecordOptions): AppendItem {
  const f = callFields(ctx);
  const args = ctx.request.params?.arguments ?? null;
  const clear = opts.clearArguments.includes('*') || opts.clearArguments.includes(f.tool);
  const d = ctx.decision;
  const record: Record<string, unknown> = {
    v: 1,
    type: 'decision',
    time: opts.now(),
    ...f,
    argsHash: sha256hex(canonicalize(args)),
    args: clear ? args : keyedValues(args, opts.hmacKey),
    argsClear: clear,
    // A listen's resources, each authorized as a subscription of its own.
    ...listenedResources(ctx),
    ...reasonOf(ctx),
    ...detectedOf(ctx),
    ...(ctx.requestSigned ? { signed: true } : {}),
    // The break-glass window is known here (authorize stage); an approval only once the call was held.
    approvalId: ctx.approvalId ?? null,
    breakGlassId: ctx.breakGlassId ?? null,
    decision: d
      ? {
          effect: d.effect,
          determiningPolicies: d.determiningPolicies,
          policySetHash: d.policySetHash,
          obligations: d.obligations,
          // What a break-glass window let through: the refusal the call would otherwise have met.
          ...(d.overridden ? { overridden: d.overridden } : {}),
        }
      : 'none',
  };
  let leaf = item(record);
  if (leaf.leaf.length > MAX_LEAF) {
    // Oversized arguments live beside the log; the leaf commits to them by hash.
    const data = Buffer.from(canonicalize(record.args), 'utf8');
    const hash = sha256hex(data);
    leaf = item({ ...record, args: { blob: hash, bytes: data.length } }, [{ hash, data }]);
  }
  if (leaf.leaf.length > MAX_LEAF) throw new Error('audit record too large');
  return leaf;
}

/** Written after the call, whatever happened; linked to its decision record by index. */
export function outcomeRecord(ctx: AuditCall, decisionIndex: number | null, opts: RecordOptions): AppendItem {
  const f = callFields(ctx);
  const time = opts.now();
  const res = ctx.response;
  const status = ctx.error || res?.error ? 'error' : 'ok';
  const record: Record<string, unknown> = {
    v: 1,
    type: 'outcome',
    time,
    ...f,
    decisionIndex,
    latencyMs: Math.max(0, time - ctx.startedAt),
    status,
    error: ctx.error?.code ?? null,
    rpcError: res?.error ? res.error.code : null,
    resultHash: res?.result
      ? ctx.sentResult?.result === res.result
        ? ctx.sentResult.hash
        : resultHash(res.result)
      : null,
    // `no-answer`: the upstream got the call but never answered; it may have acted.
    upstream: ctx.upstream ?? null,
    // The approval this call used and the break-glass window it passed under, known only once it ran.
    approvalId: ctx.approvalId ?? null,
    breakGlassId: ctx.breakGlassId ?? null,
    leaseId: ctx.leaseId ?? null,
    // What `portcullis attest verify --config` matches a saved result against.
    ...(ctx.attestation
      ? { attestation: { kid: ctx.attestation.kid, resultHash: ctx.attestation.resultHash } }
      : {}),
    ...(ctx.injection ? { injection: { score: ctx.injection.score, rules: [...ctx.injection.rules] } } : {}),
    ...maskedOf(ctx),
  };
  return item(record);
}

/** The types of secrets and personal data policy saw in the arguments, when there were any. */
function detectedOf(ctx: AuditCall): { detected?: { secrets: string[]; pii: string[] } } {
  const d = ctx.callInput?.detected;
  if (!d || (d.secrets.length === 0 && d.pii.length === 0)) return {};
  return { detected: { secrets: [...d.secrets], pii: [...d.pii] } };
}

/** What the answer held, when it was masked or held anything: a clean answer nobody asked to mask adds nothing. */
function maskedOf(ctx: AuditCall): { masked?: Record<string, unknown> } {
  const m = ctx.masked;
  if (!m || (m.mode === null && m.outcome === 'clean')) return {};
  return { masked: { mode: m.mode, outcome: m.outcome, types: { ...m.summary } } };
}

/**
 * The reason policy decided on and where it came from; a call stopped before
 * its own was read (and the gateway's lists) carries the token's.
 */
function reasonOf(ctx: AuditCall): { reason: string | null; reasonSource: ReasonSource } {
  const input = ctx.callInput ?? ctx.listenInput;
  if (input)
    return {
      reason: input.reasonSource ? input.reason.toWellFormed() : null,
      reasonSource: input.reasonSource,
    };
  const token = ctx.principal.reason;
  return token
    ? { reason: token.toWellFormed(), reasonSource: 'token' }
    : { reason: null, reasonSource: null };
}

function listenedResources(ctx: AuditCall): { resources?: string[] } {
  const listen = ctx.listenInput;
  return listen && listen.resources.length > 0
    ? { resources: listen.resources.map((r) => `${r.server}:${r.uri.toWellFormed()}`) }
    : {};
}

/** RFC 8785 when the result is representable; else (lone surrogates) a hash of its plain JSON, marked as such. */
function resultHash(result: unknown): string {
  try {
    return sha256hex(canonicalize(result));
  } catch {
    return `json:${sha256hex(JSON.stringify(result))}`;
  }
}
