/**
 * The strings of a JSON value, as decoded text: every string value at any
 * depth (text content, structuredContent, resource contents, prompt messages,
 * arguments), base64 blobs of resource contents decoded (UTF-8 when valid,
 * else byte for byte). The base64 `data` of image and audio content is media,
 * not text, and is not read. Iterative, so nesting depth is a bound, not a
 * stack overflow.
 *
 * The walk hands each string to a visitor through one reused `Leaf` and
 * builds a string's path only when asked: a result of thousands of short
 * strings, most holding nothing, then allocates almost nothing per string.
 */
import type { LeafEncoding, ValuePath } from './types.ts';

export interface Leaf {
  /** Where the string sits, as a new array; built only when asked (most strings hold no finding). */
  path(): ValuePath;
  readonly text: string;
  readonly encoding: LeafEncoding;
  /** The property name the string is the value of, if any. */
  readonly key: string | undefined;
}

/** Called for each string, in document order; the leaf is valid only during the call. False stops the walk. */
export type LeafVisitor = (leaf: Leaf) => boolean;

/** How a walk ended: every string visited, stopped by the visitor, or at a container nested past `maxDepth`. */
export type WalkEnd = { readonly done: true } | { readonly stopped: true } | { readonly tooDeep: number };

const DONE: WalkEnd = Object.freeze({ done: true });
const STOPPED: WalkEnd = Object.freeze({ stopped: true });

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The containers open from the root to the current string, and the step taken in each. */
class Cursor implements Leaf {
  readonly containers: object[] = [];
  /** An object's own keys (media data left out), or undefined for an array. */
  readonly keys: (string[] | undefined)[] = [];
  /** An object's values in the order of its keys (one call, not a keyed read per key), or the array itself. */
  readonly values: unknown[][] = [];
  readonly next: number[] = [];
  readonly steps: (string | number)[] = [];
  text = '';
  encoding: LeafEncoding = 'text';
  key: string | undefined = undefined;

  path(): ValuePath {
    return this.steps.slice(0, this.containers.length);
  }

  open(container: object): void {
    const depth = this.containers.length;
    this.containers.push(container);
    if (Array.isArray(container)) {
      this.keys.push(undefined);
      this.values.push(container);
    } else {
      const o = container as Record<string, unknown>;
      const keys = textKeys(o);
      this.keys.push(keys);
      this.values.push(keys.length === 0 ? [] : Object.values(o));
      if (this.values[depth]!.length !== keys.length) this.values[depth] = keys.map((k) => o[k]);
    }
    this.next.push(0);
    if (this.steps.length <= depth) this.steps.push(0);
  }

  close(): void {
    this.containers.pop();
    this.keys.pop();
    this.values.pop();
    this.next.pop();
  }

  /** Sets text, key and encoding for a string reached by `step` in the innermost container. */
  load(text: string, step: string | number, parent: object): void {
    this.key = typeof step === 'string' ? step : undefined;
    this.encoding = 'text';
    this.text = text;
    if (step === 'blob' && isResourceContents(parent)) {
      const bytes = Buffer.from(text, 'base64');
      try {
        this.text = utf8.decode(bytes);
        this.encoding = 'base64-utf8';
      } catch {
        this.text = bytes.toString('latin1');
        this.encoding = 'base64-latin1';
      }
    }
  }
}

/** The root string, reached by no step. */
class RootLeaf implements Leaf {
  readonly encoding = 'text';
  readonly key = undefined;
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  path(): ValuePath {
    return [];
  }
}

export function walkLeaves(value: unknown, maxDepth: number, visit: LeafVisitor): WalkEnd {
  if (typeof value === 'string') return visit(new RootLeaf(value)) ? DONE : STOPPED;
  if (value === null || typeof value !== 'object') return DONE;
  if (maxDepth <= 0) return { tooDeep: 0 };
  const at = new Cursor();
  at.open(value);
  while (at.containers.length > 0) {
    const depth = at.containers.length - 1;
    const container = at.containers[depth]!;
    const keys = at.keys[depth];
    const values = at.values[depth]!;
    const i = at.next[depth]!;
    if (i >= values.length) {
      at.close();
      continue;
    }
    at.next[depth] = i + 1;
    const step = keys ? keys[i]! : i;
    const child = values[i];
    at.steps[depth] = step;
    if (typeof child === 'string') {
      at.load(child, step, container);
      if (!visit(at)) return STOPPED;
    } else if (child !== null && typeof child === 'object') {
      if (depth + 1 >= maxDepth) return { tooDeep: depth + 1 };
      at.open(child);
    }
  }
  return DONE;
}

/** An object's keys in order, without `data` of image and audio content. */
function textKeys(o: Record<string, unknown>): string[] {
  const keys = Object.keys(o);
  if (!('data' in o) || !isMedia(o)) return keys;
  return keys.filter((k) => k !== 'data');
}

const isResourceContents = (o: unknown): boolean =>
  typeof o === 'object' && o !== null && typeof (o as { uri?: unknown }).uri === 'string';

/** `{type: 'image' | 'audio', data, mimeType}`: its `data` is media. */
const isMedia = (o: Record<string, unknown>): boolean =>
  (o.type === 'image' || o.type === 'audio') && typeof o.data === 'string';

/** Encodes masked text back the way the leaf was stored. */
export function encodeLeaf(text: string, encoding: LeafEncoding): string {
  if (encoding === 'text') return text;
  return Buffer.from(text, encoding === 'base64-utf8' ? 'utf8' : 'latin1').toString('base64');
}
