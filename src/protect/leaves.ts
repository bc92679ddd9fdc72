/**
 * The strings of a JSON value, as decoded text: every string value at any
 * depth (text content, structuredContent, resource contents, prompt messages,
 * arguments), base64 blobs of resource contents decoded (UTF-8 when valid,
 * else byte for byte). The base64 `data` of image and audio content is media,
 * not text, and is not read. Iterative, so nesting depth is a bound, not a
 * stack overflow.
 */
import type { LeafEncoding, ValuePath } from './types.ts';

export interface Leaf {
  /** Where the string sits; built only when asked (most strings hold no finding). */
  path(): ValuePath;
  readonly text: string;
  readonly encoding: LeafEncoding;
  /** The property name the string is the value of, if any. */
  readonly key: string | undefined;
}

export type LeafVisit = { leaf: Leaf } | { tooDeep: number };

/** A node on the walk: its value, and how it was reached (a chain back to the root). */
interface Step {
  readonly value: unknown;
  readonly parent: Step | undefined;
  readonly step: string | number | undefined;
  readonly depth: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function* leavesOf(value: unknown, maxDepth: number): Generator<LeafVisit> {
  const stack: Step[] = [{ value, parent: undefined, step: undefined, depth: 0 }];
  while (stack.length > 0) {
    const node = stack.pop()!;
    const v = node.value;
    if (typeof v === 'string') {
      yield { leaf: leafOf(v, node) };
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (node.depth >= maxDepth) {
      yield { tooDeep: node.depth };
      return;
    }
    const depth = node.depth + 1;
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], parent: node, step: i, depth });
      continue;
    }
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    for (let i = keys.length - 1; i >= 0; i--) {
      const k = keys[i]!;
      if (!isMedia(o, k)) stack.push({ value: o[k], parent: node, step: k, depth });
    }
  }
}

function pathOf(node: Step): ValuePath {
  const path: (string | number)[] = [];
  for (let n: Step | undefined = node; n?.parent; n = n.parent) path.push(n.step!);
  return path.reverse();
}

function leafOf(text: string, node: Step): Leaf {
  const key = typeof node.step === 'string' ? node.step : undefined;
  const path = () => pathOf(node);
  if (key === 'blob' && isResourceContents(node.parent?.value)) {
    const bytes = Buffer.from(text, 'base64');
    try {
      return { path, text: utf8.decode(bytes), encoding: 'base64-utf8', key };
    } catch {
      return { path, text: bytes.toString('latin1'), encoding: 'base64-latin1', key };
    }
  }
  return { path, text, encoding: 'text', key };
}

const isResourceContents = (o: unknown): boolean =>
  typeof o === 'object' && o !== null && typeof (o as { uri?: unknown }).uri === 'string';

/** `data` of `{type: 'image' | 'audio', data, mimeType}`. */
const isMedia = (o: Record<string, unknown>, key: string): boolean =>
  key === 'data' && (o.type === 'image' || o.type === 'audio') && typeof o.data === 'string';

/** Encodes masked text back the way the leaf was stored. */
export function encodeLeaf(text: string, encoding: LeafEncoding): string {
  if (encoding === 'text') return text;
  return Buffer.from(text, encoding === 'base64-utf8' ? 'utf8' : 'latin1').toString('base64');
}
