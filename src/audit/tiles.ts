import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { nodeHash } from './merkle.ts';

/** c2sp.org/tlog-tiles: static hash tiles and entry bundles for a tree of `leaves.length` entries. */
const WIDTH = 256;

/** 1234067 → x001/x234/067 */
export function tileIndexPath(n: number): string {
  const groups: string[] = [];
  let x = n;
  do {
    groups.unshift(String(x % 1000).padStart(3, '0'));
    x = Math.floor(x / 1000);
  } while (x > 0);
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join('/');
}

const tileName = (n: number, count: number): string =>
  tileIndexPath(n) + (count < WIDTH ? `.p/${count}` : '');

function write(dir: string, rel: string, data: Buffer | string): void {
  const path = join(dir, rel);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
}

/** Writes `checkpoint`, `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`; returns the number of files. */
export function exportTiles(
  dir: string,
  entries: readonly Buffer[],
  leaves: readonly Buffer[],
  checkpoint: string,
): number {
  let files = 0;
  write(dir, 'checkpoint', checkpoint);
  files++;
  // Hashes at tree level 8·L form the tiles of level L; only complete nodes are published.
  let level: Buffer[] = [...leaves];
  for (let L = 0; level.length > 0; L++) {
    for (let n = 0; n * WIDTH < level.length; n++) {
      const chunk = level.slice(n * WIDTH, (n + 1) * WIDTH);
      write(dir, `tile/${L}/${tileName(n, chunk.length)}`, Buffer.concat(chunk));
      files++;
    }
    for (let k = 0; k < 8; k++) {
      const up: Buffer[] = [];
      for (let i = 0; i + 1 < level.length; i += 2) up.push(nodeHash(level[i]!, level[i + 1]!));
      level = up;
    }
  }
  for (let n = 0; n * WIDTH < entries.length; n++) {
    const chunk = entries.slice(n * WIDTH, (n + 1) * WIDTH);
    const parts = chunk.flatMap((e) => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(e.length);
      return [len, e];
    });
    write(dir, `tile/entries/${tileName(n, chunk.length)}`, Buffer.concat(parts));
    files++;
  }
  return files;
}
