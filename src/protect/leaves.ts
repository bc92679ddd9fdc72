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
  readonly path: ValuePath;
  readonly text: string;
  readonly encoding: LeafEncoding;
  /** The property name the string is the value of, if any. */
  readonly key: string | undefined;
}

export type LeafVisit = { leaf: Leaf } | { tooDeep: number };

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function* leavesOf(value: unknown, maxDepth: number): Generator<LeafVisit> {
  const stack: { value: unknown; path: ValuePath; key: string | undefined; parent: unknown }[] = [
    { value, path: [], key: undefined, parent: undefined },
  ];
  while (stack.length > 0) {
    const { value: v, path, key, parent } = stack.pop()!;
    if (typeof v === 'string') {
      yield { leaf: leafOf(v, path, key, parent) };
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (path.length >= maxDepth) {
      yield { tooDeep: path.length };
      return;
    }
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--)
        stack.push({ value: v[i], path: [...path, i], key: undefined, parent: v });
      continue;
    }
    const entries = Object.entries(v as Record<string, unknown>);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [k, child] = entries[i]!;
      if (isMedia(v as Record<string, unknown>, k)) continue;
      stack.push({ value: child, path: [...path, k], key: k, parent: v });
    }
  }
}

function leafOf(text: string, path: ValuePath, key: string | undefined, parent: unknown): Leaf {
  if (key === 'blob' && isResourceContents(parent)) {
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
