import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { inclusionProof, leafHash, treeRoot, verifyInclusion } from '../../src/audit/merkle.ts';
import { MerkleLevels } from '../../src/audit/tree.ts';

const leavesOf = (n: number): Buffer[] =>
  Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`entry ${i}`)));

function levelsOf(leaves: readonly Buffer[]): MerkleLevels {
  const levels = new MerkleLevels();
  for (const h of leaves) levels.append(h);
  return levels;
}

describe('the stored levels of a Merkle tree', () => {
  it('gives the same root as the recursive definition at every size of the tree', () => {
    const leaves = leavesOf(300);
    const levels = levelsOf(leaves);
    for (let size = 0; size <= leaves.length; size++)
      assert.deepEqual(levels.root(size), treeRoot(leaves, size));
  });

  it('gives the same inclusion proof as RFC 6962 PATH for any entry and tree size', () => {
    const leaves = leavesOf(1100);
    const levels = levelsOf(leaves);
    const sizeAndIndex = fc
      .integer({ min: 1, max: leaves.length })
      .chain((n) => fc.tuple(fc.constant(n), fc.nat(n - 1)));
    fc.assert(
      fc.property(sizeAndIndex, ([size, index]) => {
        const proof = levels.inclusionProof(index, size);
        assert.deepEqual(proof, inclusionProof(leaves, index, size));
        assert.ok(verifyInclusion(index, size, leaves[index]!, proof, treeRoot(leaves, size)));
      }),
      { numRuns: 500 },
    );
  });

  it('gives the right edge of any prefix, which appends onto the same roots as the whole tree', () => {
    const leaves = leavesOf(140);
    const levels = levelsOf(leaves);
    for (let size = 0; size <= leaves.length; size += 7) {
      const range = levels.rangeAt(size);
      assert.deepEqual(range.root(), treeRoot(leaves, size));
      for (let i = size; i < Math.min(size + 9, leaves.length); i++) {
        range.append(leaves[i]!);
        assert.deepEqual(range.root(), treeRoot(leaves, i + 1));
      }
    }
  });

  it('refuses a size or an index beyond the leaves it holds', () => {
    const levels = levelsOf(leavesOf(5));
    assert.throws(() => levels.root(6), RangeError);
    assert.throws(() => levels.inclusionProof(5, 5), RangeError);
    assert.throws(() => levels.inclusionProof(0, 6), RangeError);
    assert.throws(() => levels.rangeAt(6), RangeError);
  });
});
