import { CompactRange, EMPTY_ROOT, HASH_SIZE, nodeHash, splitPoint } from './merkle.ts';

/** Hashes packed into one growing buffer: a Buffer object per hash would cost more than the hash. */
export class HashList {
  private buf = Buffer.alloc(HASH_SIZE * 1024);
  length = 0;

  push(h: Uint8Array): void {
    if ((this.length + 1) * HASH_SIZE > this.buf.length) {
      const bigger = Buffer.alloc(this.buf.length * 2);
      this.buf.copy(bigger);
      this.buf = bigger;
    }
    this.buf.set(h, this.length * HASH_SIZE);
    this.length++;
  }

  get(i: number): Buffer {
    if (i < 0 || i >= this.length) throw new RangeError('hash index out of range');
    return this.buf.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE);
  }
}

/** log2 of n when n is a power of two, else -1. */
function exactLog2(n: number): number {
  let level = 0;
  let x = n;
  while (x > 1 && x % 2 === 0) {
    x /= 2;
    level++;
  }
  return x === 1 ? level : -1;
}

/**
 * Every complete node of a Merkle tree, level by level (what c2sp.org/tlog-tiles
 * publishes). Built once from the leaf hashes, it answers the root at any size
 * and any RFC 6962 inclusion proof in O(log² n) hashes, where recomputing from
 * the leaves costs O(n) for each.
 */
export class MerkleLevels {
  private readonly levels: HashList[] = [new HashList()];

  get size(): number {
    return this.levels[0]!.length;
  }

  append(leafHash: Uint8Array): void {
    let h = leafHash;
    for (let level = 0; ; level++) {
      this.levels[level] ??= new HashList();
      const list = this.levels[level]!;
      list.push(h);
      if (list.length % 2 === 1) return;
      h = nodeHash(list.get(list.length - 2), h);
    }
  }

  leaf(index: number): Buffer {
    return this.levels[0]!.get(index);
  }

  /** MTH over leaves [lo, hi), hi within the tree. */
  subtree(lo: number, hi: number): Buffer {
    const n = hi - lo;
    if (n === 0) return EMPTY_ROOT;
    const level = exactLog2(n);
    if (level >= 0 && lo % n === 0) return this.levels[level]!.get(lo / n);
    const k = splitPoint(n);
    return nodeHash(this.subtree(lo, lo + k), this.subtree(lo + k, hi));
  }

  root(size = this.size): Buffer {
    if (size < 0 || size > this.size) throw new RangeError('size out of range');
    return this.subtree(0, size);
  }

  /** RFC 6962 PATH(index, D[0:size]). */
  inclusionProof(index: number, size: number): Buffer[] {
    if (index < 0 || index >= size || size > this.size) throw new RangeError('index out of range');
    const path: Buffer[] = [];
    let [m, lo, hi] = [index, 0, size];
    while (hi - lo > 1) {
      const k = splitPoint(hi - lo);
      if (m < k) {
        path.push(this.subtree(lo + k, hi));
        hi = lo + k;
      } else {
        path.push(this.subtree(lo, lo + k));
        lo += k;
        m -= k;
      }
    }
    return path.reverse();
  }

  /** The right edge of the first `size` leaves, to append onto (one perfect subtree per set bit). */
  rangeAt(size: number): CompactRange {
    if (size < 0 || size > this.size) throw new RangeError('size out of range');
    const hashes: Buffer[] = [];
    let lo = 0;
    for (let bit = 2 ** Math.floor(Math.log2(Math.max(size, 1))); bit >= 1; bit /= 2) {
      if (lo + bit > size) continue;
      hashes.push(Buffer.from(this.subtree(lo, lo + bit)));
      lo += bit;
    }
    return new CompactRange(size, hashes);
  }
}
