import { createHash, hash } from 'node:crypto';

/** RFC 6962 / RFC 9162 Merkle tree hashing and proofs over SHA-256. */

export const HASH_SIZE = 32;
export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

const LEAF_PREFIX = Buffer.of(0);
const NODE_PREFIX = Buffer.of(1);

// One-shot `hash` rather than a Hash object: a call appends about a dozen node hashes per entry.
export const leafHash = (entry: Uint8Array): Buffer<ArrayBufferLike> =>
  hash('sha256', Buffer.concat([LEAF_PREFIX, entry]), 'buffer') as Buffer;

/** Reused by `nodeHash` for the usual two 32-byte children: `hash` reads it before returning. */
const nodeInput = Buffer.alloc(1 + 2 * HASH_SIZE, NODE_PREFIX[0]);

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer<ArrayBufferLike> {
  if (left.length !== HASH_SIZE || right.length !== HASH_SIZE)
    return hash('sha256', Buffer.concat([NODE_PREFIX, left, right]), 'buffer') as Buffer;
  nodeInput.set(left, 1);
  nodeInput.set(right, 1 + HASH_SIZE);
  return hash('sha256', nodeInput, 'buffer') as Buffer;
}

/** The largest power of two strictly smaller than n (n > 1). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH over leaf hashes [lo, hi). */
export function subtreeRoot(leaves: readonly Uint8Array[], lo: number, hi: number): Buffer {
  const n = hi - lo;
  if (n === 0) return EMPTY_ROOT;
  if (n === 1) return Buffer.from(leaves[lo]!);
  const k = splitPoint(n);
  return nodeHash(subtreeRoot(leaves, lo, lo + k), subtreeRoot(leaves, lo + k, hi));
}

export const treeRoot = (leaves: readonly Uint8Array[], size = leaves.length): Buffer =>
  subtreeRoot(leaves, 0, size);

/** RFC 6962 PATH(m, D[lo:hi]). */
export function inclusionProof(leaves: readonly Uint8Array[], index: number, size: number): Buffer[] {
  if (index < 0 || index >= size || size > leaves.length) throw new RangeError('index out of range');
  const path = (m: number, lo: number, hi: number): Buffer[] => {
    const n = hi - lo;
    if (n <= 1) return [];
    const k = splitPoint(n);
    return m < k
      ? [...path(m, lo, lo + k), subtreeRoot(leaves, lo + k, hi)]
      : [...path(m - k, lo + k, hi), subtreeRoot(leaves, lo, lo + k)];
  };
  return path(index, 0, size);
}

/** RFC 6962 PROOF(m, D[0:n]) via SUBPROOF. */
export function consistencyProof(leaves: readonly Uint8Array[], m: number, n: number): Buffer[] {
  if (m < 0 || m > n || n > leaves.length) throw new RangeError('sizes out of range');
  if (m === 0 || m === n) return [];
  const sub = (m: number, lo: number, hi: number, whole: boolean): Buffer[] => {
    const n = hi - lo;
    if (m === n) return whole ? [] : [subtreeRoot(leaves, lo, hi)];
    const k = splitPoint(n);
    return m <= k
      ? [...sub(m, lo, lo + k, whole), subtreeRoot(leaves, lo + k, hi)]
      : [...sub(m - k, lo + k, hi, false), subtreeRoot(leaves, lo, lo + k)];
  };
  return sub(m, 0, n, true);
}

const isHash = (h: Uint8Array): boolean => h.length === HASH_SIZE;
const equal = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0;
const lsb = (x: number): boolean => x % 2 === 1;
const half = (x: number): number => Math.floor(x / 2);

/**
 * RFC 9162 §2.1.3.2, generalised to a subtree: the root implied by an inclusion
 * proof of leaf `fn` in a tree whose last index is `sn`, or null if malformed.
 * Plain arithmetic halving instead of `>>` keeps indices above 2^31 exact.
 */
function rootFromInclusion(
  fn: number,
  sn: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
): Buffer | null {
  if (!isHash(leaf) || fn > sn) return null;
  let r: Buffer<ArrayBufferLike> = Buffer.from(leaf);
  for (const p of proof) {
    if (!isHash(p) || sn === 0) return null;
    if (lsb(fn) || fn === sn) {
      r = nodeHash(p, r);
      while (!lsb(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 ? r : null;
}

export function verifyInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  const r = rootFromInclusion(index, size - 1, leaf, proof);
  return r !== null && equal(r, root);
}

/** RFC 9162 §2.1.4.2. Nothing is provable from an empty tree, so size1 = 0 fails. */
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): boolean {
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2)) return false;
  if (size1 <= 0 || size2 < size1) return false;
  if (size1 === size2) return proof.length === 0 && equal(root1, root2);
  if (proof.length === 0 || !proof.every(isHash)) return false;
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (lsb(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr: Buffer<ArrayBufferLike> = Buffer.from(path[0]!);
  let sr: Buffer<ArrayBufferLike> = Buffer.from(path[0]!);
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (lsb(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!lsb(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && equal(fr, root1) && equal(sr, root2);
}

const isPowerOfTwo = (n: number): boolean => n > 0 && 2 ** Math.round(Math.log2(n)) === n;

/** The smallest power of two at or above n. */
const bitCeil = (n: number): number => (n <= 1 ? 1 : 2 ** Math.ceil(Math.log2(n)));

/** A subtree [start, end) of a Merkle tree: aligned on the smallest power of two covering it. */
export const isValidSubtree = (start: number, end: number): boolean =>
  Number.isSafeInteger(start) &&
  Number.isSafeInteger(end) &&
  start >= 0 &&
  start < end &&
  start % bitCeil(end - start) === 0;

/** Inclusion of leaf `index` in the subtree [start, end) whose hash is `root`. */
export function verifySubtreeInclusion(
  index: number,
  start: number,
  end: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (!isValidSubtree(start, end) || !Number.isSafeInteger(index) || index < start || index >= end)
    return false;
  const r = rootFromInclusion(index - start, end - start - 1, leaf, proof);
  return r !== null && equal(r, root);
}

/** The subtree [start, end) with hash `subRoot` is part of the tree of `size` leaves with `root`. */
export function verifySubtreeConsistency(
  start: number,
  end: number,
  size: number,
  proof: readonly Uint8Array[],
  subRoot: Uint8Array,
  root: Uint8Array,
): boolean {
  if (start === end) return start >= 0 && end <= size && proof.length === 0 && equal(subRoot, EMPTY_ROOT);
  if (!isValidSubtree(start, end) || !Number.isSafeInteger(size) || end > size) return false;
  if (!proof.every(isHash)) return false;
  let fn = start;
  let sn = end - 1;
  let tn = size - 1;
  const shift = (): void => {
    fn = half(fn);
    sn = half(sn);
    tn = half(tn);
  };
  if (sn === tn) {
    while (fn !== sn) shift();
  } else {
    while (fn !== sn && lsb(sn)) shift();
  }
  const rest = [...proof];
  let fr: Buffer<ArrayBufferLike>;
  if (fn === sn) {
    fr = Buffer.from(subRoot);
  } else {
    const first = rest.shift();
    if (!first) return false;
    fr = Buffer.from(first);
  }
  let sr = fr;
  for (const c of rest) {
    if (tn === 0) return false;
    if (lsb(sn) || sn === tn) {
      if (fn < sn) fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!lsb(sn) && sn !== 0) shift();
    } else {
      sr = nodeHash(sr, c);
    }
    shift();
  }
  return tn === 0 && equal(fr, subRoot) && equal(sr, root);
}

/**
 * The right edge of a tree: roots of its perfect subtrees, largest first (one per
 * set bit of the size). Enough to append and to compute the root without the leaves.
 */
export class CompactRange {
  size: number;
  readonly hashes: Buffer[];

  constructor(size = 0, hashes: Buffer[] = []) {
    if (popcount(size) !== hashes.length) throw new RangeError('compact range does not match its size');
    this.size = size;
    this.hashes = hashes;
  }

  append(leaf: Uint8Array): void {
    let h: Buffer<ArrayBufferLike> = Buffer.from(leaf);
    let size = this.size;
    while (lsb(size)) {
      h = nodeHash(this.hashes.pop()!, h);
      size = half(size);
    }
    this.hashes.push(h);
    this.size += 1;
  }

  root(): Buffer {
    if (this.hashes.length === 0) return EMPTY_ROOT;
    let r = this.hashes[this.hashes.length - 1]!;
    for (let i = this.hashes.length - 2; i >= 0; i--) r = nodeHash(this.hashes[i]!, r);
    return r;
  }

  clone(): CompactRange {
    return new CompactRange(this.size, [...this.hashes]);
  }
}

function popcount(n: number): number {
  let c = 0;
  for (let x = n; x > 0; x = half(x)) if (lsb(x)) c++;
  return c;
}
