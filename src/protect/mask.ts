/**
 * Masking a JSON value by its findings: a masked copy (the input is never
 * changed; only the containers on a masked path are copied) and a summary of
 * type -> count for the audit record, never the values.
 */
import { createHmac } from 'node:crypto';
import { PortcullisError } from '../errors.ts';
import type { MaskMode } from './config.ts';
import { encodeLeaf } from './leaves.ts';
import type { Finding, LeafEncoding, ValuePath } from './types.ts';

export type MaskSummary = Record<string, number>;

export type Masked =
  | { readonly outcome: 'clean'; readonly value: unknown; readonly summary: MaskSummary }
  | { readonly outcome: 'masked'; readonly value: unknown; readonly summary: MaskSummary }
  | { readonly outcome: 'blocked'; readonly summary: MaskSummary };

export interface MaskOptions {
  /** The HMAC key of `hash` mode. */
  readonly hashKey?: Uint8Array | undefined;
}

/** Keeps a value's last four characters only when that leaves at least this many hidden. */
const PARTIAL_MIN = 8;

export function maskValue(
  value: unknown,
  findings: readonly Finding[],
  mode: MaskMode,
  options: MaskOptions = {},
): Masked {
  const byLeaf = new Map<string, Finding[]>();
  for (const f of findings) {
    const key = JSON.stringify(f.path);
    const list = byLeaf.get(key);
    if (list) list.push(f);
    else byLeaf.set(key, [f]);
  }
  return maskLeaves(value, findings, byLeaf.values(), mode, options);
}

/**
 * `maskValue` for findings as `scanValue` gives them: each string's findings
 * next to each other under one path array, no string twice. Grouping them by
 * that array spares serializing every path.
 */
export function maskScanned(
  value: unknown,
  findings: readonly Finding[],
  mode: MaskMode,
  options: MaskOptions = {},
): Masked {
  // Each string's run sliced out at its exact size (arrays grown by push are several times larger).
  const runs: Finding[][] = [];
  let from = 0;
  for (let i = 1; i <= findings.length; i++) {
    if (i < findings.length && findings[i]!.path === findings[from]!.path) continue;
    runs.push(findings.slice(from, i));
    from = i;
  }
  return maskLeaves(value, findings, runs, mode, { ...options, inOrder: true });
}

/**
 * Masks each string's findings (`byLeaf`: one list per string, all of one
 * path). `inOrder`: the lists come in document order (as `scanValue` finds
 * them), so the containers copied for one path are reused for the next
 * while it shares their prefix, without a set of copies.
 */
function maskLeaves(
  value: unknown,
  findings: readonly Finding[],
  byLeaf: Iterable<Finding[]>,
  mode: MaskMode,
  options: MaskOptions & { readonly inOrder?: boolean },
): Masked {
  const summary = summarize(findings);
  if (findings.length === 0) return { outcome: 'clean', value, summary };
  if (mode === 'block') return { outcome: 'blocked', summary };
  if (mode === 'hash' && !options.hashKey?.length) {
    throw new PortcullisError('ERR_RESULT_WITHHELD', 'hash masking without a key', {
      publicArgs: ['it could not be checked for sensitive data'],
    });
  }
  const placeholder = placeholderFor(mode, options.hashKey);
  const copier = options.inOrder ? new PathCopier() : undefined;
  const copied = new WeakSet<object>();
  let root = value;
  for (const list of byLeaf) {
    const { path, encoding } = list[0]!;
    const original = readPath(value, path);
    if (typeof original !== 'string') throw new Error(`masking: no string at ${JSON.stringify(path)}`);
    let text = maskText(decodeLeaf(original, encoding), list, placeholder);
    // Bytes that are not UTF-8 are re-encoded one character per byte: keep the placeholder ASCII.
    if (encoding === 'base64-latin1') text = text.replaceAll('…', '...');
    const masked = encodeLeaf(text, encoding);
    root = copier ? copier.write(value, path, masked) : writePath(root, path, masked, copied);
  }
  return { outcome: 'masked', value: root, summary };
}

export function summarize(findings: readonly Finding[]): MaskSummary {
  const summary: MaskSummary = {};
  for (const f of findings) summary[f.type] = (summary[f.type] ?? 0) + 1;
  return summary;
}

type Placeholder = (type: string, secret: string) => string;

function placeholderFor(mode: Exclude<MaskMode, 'block'>, hashKey: Uint8Array | undefined): Placeholder {
  if (mode === 'partial') {
    return (type, secret) =>
      secret.length >= PARTIAL_MIN ? `[REDACTED:${type}:…${secret.slice(-4)}]` : `[REDACTED:${type}]`;
  }
  if (mode === 'hash') {
    return (type, secret) =>
      `[HASHED:${type}:${createHmac('sha256', hashKey!).update(secret).digest('hex').slice(0, 16)}]`;
  }
  return (type) => `[REDACTED:${type}]`;
}

/** Replaces each span; overlapping spans merge into one, named by the one starting first (the longest at a tie). */
export function maskText(
  text: string,
  findings: readonly { type: string; start: number; end: number }[],
  placeholder: Placeholder,
): string {
  const spans =
    findings.length === 1 ? findings : [...findings].sort((a, b) => a.start - b.start || b.end - a.end);
  let out = '';
  let at = 0;
  let i = 0;
  while (i < spans.length) {
    const first = spans[i]!;
    let end = first.end;
    let j = i + 1;
    while (j < spans.length && spans[j]!.start < end) end = Math.max(end, spans[j++]!.end);
    const start = Math.max(first.start, at);
    out += text.slice(at, start) + placeholder(first.type, text.slice(start, end));
    at = end;
    i = j;
  }
  return out + text.slice(at);
}

function decodeLeaf(stored: string, encoding: LeafEncoding): string {
  if (encoding === 'text') return stored;
  const bytes = Buffer.from(stored, 'base64');
  return encoding === 'base64-utf8' ? bytes.toString('utf8') : bytes.toString('latin1');
}

function readPath(value: unknown, path: ValuePath): unknown {
  let v = value;
  for (const step of path) v = (v as Record<string | number, unknown>)[step];
  return v;
}

/** Sets `path` to `leaf` in a copy of `root`, copying each container on the path once. */
function writePath(root: unknown, path: ValuePath, leaf: string, copied: WeakSet<object>): unknown {
  if (path.length === 0) return leaf;
  const top = copyOnce(root as object, copied);
  let parent = top as Record<string | number, unknown>;
  for (let i = 0; i < path.length - 1; i++) {
    const child = copyOnce(parent[path[i]!] as object, copied);
    parent[path[i]!] = child;
    parent = child as Record<string | number, unknown>;
  }
  parent[path[path.length - 1]!] = leaf;
  return top;
}

function copyOnce(container: object, copied: WeakSet<object>): object {
  if (copied.has(container)) return container;
  const copy = Array.isArray(container) ? [...container] : { ...container };
  copied.add(copy);
  return copy;
}

/**
 * Copies along paths given in document order: the containers of the last
 * path (originals and their copies, by depth) stay while the next path runs
 * through the same ones. Once a walk has left a container it never comes
 * back to it, so no copy is made twice.
 */
class PathCopier {
  private readonly originals: object[] = [];
  private readonly copies: Record<string | number, unknown>[] = [];

  /** Sets `path` to `leaf` in the copy of `root` (the original value); returns the copy. */
  write(root: unknown, path: ValuePath, leaf: string): unknown {
    if (path.length === 0) return leaf;
    let original = root as object;
    for (let depth = 0; depth < path.length; depth++) {
      if (this.originals[depth] !== original) {
        this.originals.length = depth;
        this.copies.length = depth;
        this.originals.push(original);
        this.copies.push(
          (Array.isArray(original) ? [...original] : { ...original }) as Record<string, unknown>,
        );
        if (depth > 0) this.copies[depth - 1]![path[depth - 1]!] = this.copies[depth];
      }
      if (depth + 1 < path.length)
        original = (original as Record<string | number, unknown>)[path[depth]!] as object;
    }
    this.copies[path.length - 1]![path[path.length - 1]!] = leaf;
    return this.copies[0];
  }
}
