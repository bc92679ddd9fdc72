import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  CompactRange,
  consistencyProof,
  EMPTY_ROOT,
  inclusionProof,
  leafHash,
  nodeHash,
  verifyConsistency,
  verifyInclusion,
} from '../../src/audit/merkle.ts';

/** The slow reference: MTH exactly as RFC 6962 §2.1 defines it, over the entries themselves. */
function referenceRoot(entries: readonly Buffer[]): Buffer {
  if (entries.length === 0) return createHash('sha256').digest();
  if (entries.length === 1) return leafHash(entries[0]!);
  let k = 1;
  while (k * 2 < entries.length) k *= 2;
  return nodeHash(referenceRoot(entries.slice(0, k)), referenceRoot(entries.slice(k)));
}

const entriesOf = (n: number): Buffer[] => Array.from({ length: n }, (_, i) => Buffer.from(`entry ${i}`));
const flip = (h: Buffer): Buffer => {
  const c = Buffer.from(h);
  c[0] = c[0]! ^ 1;
  return c;
};

const sizeAndIndex = fc.integer({ min: 1, max: 300 }).chain((n) => fc.tuple(fc.constant(n), fc.nat(n - 1)));
const twoSizes = fc
  .integer({ min: 1, max: 300 })
  .chain((n) => fc.tuple(fc.integer({ min: 1, max: n }), fc.constant(n)));

describe('Merkle proofs against the recursive reference', () => {
  it('computes the same root as the reference, incrementally and recursively', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300 }), (n) => {
        const entries = entriesOf(n);
        const range = new CompactRange();
        for (const e of entries) range.append(leafHash(e));
        const want = referenceRoot(entries);
        assert.deepEqual(range.root(), want);
        assert.deepEqual(n === 0 ? EMPTY_ROOT : want, want);
      }),
      { numRuns: 60 },
    );
  });

  it('accepts every generated inclusion proof and rejects a wrong index, size or hash', () => {
    fc.assert(
      fc.property(sizeAndIndex, fc.nat(), ([n, i], other) => {
        const entries = entriesOf(n);
        const leaves = entries.map(leafHash);
        const root = referenceRoot(entries);
        const proof = inclusionProof(leaves, i, n);
        assert.equal(verifyInclusion(i, n, leaves[i]!, proof, root), true);
        const j = other % n;
        if (j !== i) assert.equal(verifyInclusion(j, n, leaves[i]!, proof, root), false);
        assert.equal(verifyInclusion(i, n, flip(leaves[i]!), proof, root), false);
        if (proof.length > 0) {
          const bad = proof.map((h, k) => (k === other % proof.length ? flip(h) : h));
          assert.equal(verifyInclusion(i, n, leaves[i]!, bad, root), false);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('accepts every generated consistency proof and rejects a changed history', () => {
    fc.assert(
      fc.property(twoSizes, fc.nat(), ([m, n], pick) => {
        const entries = entriesOf(n);
        const leaves = entries.map(leafHash);
        const r1 = referenceRoot(entries.slice(0, m));
        const r2 = referenceRoot(entries);
        const proof = consistencyProof(leaves, m, n);
        assert.equal(verifyConsistency(m, n, proof, r1, r2), true);
        assert.equal(verifyConsistency(m, n, proof, flip(r1), r2), false);
        assert.equal(verifyConsistency(m, n, proof, r1, flip(r2)), false);
        if (proof.length > 0) {
          const bad = proof.map((h, k) => (k === pick % proof.length ? flip(h) : h));
          assert.equal(verifyConsistency(m, n, bad, r1, r2), false);
        }
        const rewritten = [...entries];
        rewritten[pick % m] = Buffer.from('rewritten');
        assert.equal(verifyConsistency(m, n, proof, referenceRoot(rewritten.slice(0, m)), r2), false);
      }),
      { numRuns: 150 },
    );
  });
});
