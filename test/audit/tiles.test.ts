import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { leafHash, nodeHash, subtreeRoot } from '../../src/audit/merkle.ts';
import { exportTiles, tileIndexPath } from '../../src/audit/tiles.ts';

const walk = (dir: string): string[] =>
  readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });

describe('tlog-tiles export', () => {
  it('writes tile indices in groups of three digits', () => {
    assert.equal(tileIndexPath(1234067), 'x001/x234/067');
    assert.equal(tileIndexPath(5), '005');
    assert.equal(tileIndexPath(1000), 'x001/000');
  });

  it('publishes full and partial hash tiles and entry bundles that rebuild the tree', () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-tiles-'));
    const entries = Array.from({ length: 600 }, (_, i) => Buffer.from(`entry ${i}`));
    const leaves = entries.map(leafHash);
    exportTiles(dir, entries, leaves, 'checkpoint\n');
    const files = walk(dir)
      .map((p) => relative(dir, p))
      .sort();
    assert.deepEqual(files, [
      'checkpoint',
      'tile/0/000',
      'tile/0/001',
      'tile/0/002.p/88',
      'tile/1/000.p/2',
      'tile/entries/000',
      'tile/entries/001',
      'tile/entries/002.p/88',
    ]);
    assert.deepEqual(readFileSync(join(dir, 'tile/0/001')), Buffer.concat(leaves.slice(256, 512)));
    const level1 = readFileSync(join(dir, 'tile/1/000.p/2'));
    assert.deepEqual(level1.subarray(0, 32), subtreeRoot(leaves, 0, 256));
    assert.deepEqual(level1.subarray(32), subtreeRoot(leaves, 256, 512));
    assert.deepEqual(nodeHash(level1.subarray(0, 32), level1.subarray(32)), subtreeRoot(leaves, 0, 512));
    const bundle = readFileSync(join(dir, 'tile/entries/002.p/88'));
    assert.equal(bundle.readUInt16BE(0), entries[512]!.length);
    assert.equal(bundle.subarray(2, 2 + entries[512]!.length).toString(), 'entry 512');
  });
});
