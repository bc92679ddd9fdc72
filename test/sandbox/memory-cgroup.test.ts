import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { detectMemoryCgroup, MemoryCgroups, ownMemoryCgroup } from '../../src/sandbox/memory-cgroup.ts';

const V1_MOUNTS = [
  '30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  '34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
].join('\n');

describe('the memory cgroup a sandbox is limited by', () => {
  it("finds the gateway's own cgroup in a v1 memory hierarchy, also where the mount's root is a sub-tree", () => {
    const own = '4:memory:/process_api/abc\n1:cpu:/\n0::/';
    assert.deepEqual(ownMemoryCgroup(own, V1_MOUNTS), {
      version: 1,
      parent: '/sys/fs/cgroup/memory/process_api/abc',
    });
    const nested = V1_MOUNTS.replace(
      '0:31 / /sys/fs/cgroup/memory',
      '0:31 /process_api /sys/fs/cgroup/memory',
    );
    assert.deepEqual(ownMemoryCgroup(own, nested), { version: 1, parent: '/sys/fs/cgroup/memory/abc' });
    const combined = '4:cpu,memory:/x\n';
    const combinedMount = V1_MOUNTS.replace('rw,memory', 'rw,cpu,memory');
    assert.deepEqual(ownMemoryCgroup(combined, combinedMount), {
      version: 1,
      parent: '/sys/fs/cgroup/memory/x',
    });
  });

  it('finds none where the only hierarchy is v2 and memory is not delegated to children', () => {
    assert.equal(ownMemoryCgroup('0::/user.slice/session-1.scope', V1_MOUNTS), undefined);
    assert.equal(ownMemoryCgroup('', V1_MOUNTS), undefined);
  });

  it('makes a child with the limit set, in bytes, and removes it once empty (on this machine, as CI runs it)', () => {
    const host = detectMemoryCgroup();
    assert.ok(host, 'a writable memory cgroup (CI runs as root)');
    const cgroup = new MemoryCgroups(host).create(96);
    const dir = join(cgroup.procs, '..');
    const file = host.version === 1 ? 'memory.limit_in_bytes' : 'memory.max';
    assert.equal(readFileSync(join(dir, file), 'utf8').trim(), String(96 * 1024 * 1024));
    cgroup.release();
    assert.equal(cgroup.released(), true);
    assert.equal(existsSync(dir), false);
  });
});
