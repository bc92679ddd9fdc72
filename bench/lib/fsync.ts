/** What one fsync costs on the disk the run writes to: the unit of the strictest durability target. */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface FsyncCost {
  p50Ms: number;
  p90Ms: number;
  samples: number;
}

/** Appends a 300-byte record and fdatasyncs it, `n` times, in the folder the gateways' logs live in. */
export function measureFsync(n = 300): FsyncCost {
  const dir = mkdtempSync(join(tmpdir(), 'bench-fsync-'));
  const fd = openSync(join(dir, 'probe'), 'a');
  const record = Buffer.alloc(300, 0x61);
  const ms: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      writeSync(fd, record);
      const t0 = performance.now();
      fdatasyncSync(fd);
      ms.push(performance.now() - t0);
    }
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  ms.sort((a, b) => a - b);
  return { p50Ms: ms[Math.floor(n / 2)]!, p90Ms: ms[Math.floor(n * 0.9)]!, samples: n };
}
