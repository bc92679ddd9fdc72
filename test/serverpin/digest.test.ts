import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  realpathSync,
  renameSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FileHasher, SETTLE_MS } from '../../src/serverpin/digest.ts';
import { NODE } from '../helpers.ts';

const temp = () => realpathSync(mkdtempSync(join(tmpdir(), 'pc-digest-')));
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
/** A clock far enough ahead that every file written so far counts as settled. */
const later = () => Date.now() + 10 * SETTLE_MS;

/** Writes in place (same inode, same size) and puts mtime back, until the kernel's coarse clock has moved ctime on. */
function overwriteKeepingMtime(path: string, text: string): void {
  const before = statSync(path, { bigint: true });
  do {
    writeFileSync(path, text);
    utimesSync(path, before.atime, before.mtime);
  } while (statSync(path, { bigint: true }).ctimeNs === before.ctimeNs);
  const after = statSync(path, { bigint: true });
  assert.deepEqual([after.ino, after.size, after.mtimeNs], [before.ino, before.size, before.mtimeNs]);
}

describe('file digests and their cache', () => {
  it('hashes a file to the SHA-256 of its bytes, and a restart of an unchanged file reads it from the cache', async () => {
    const hasher = new FileHasher();
    const first = await hasher.file(NODE);
    const read = hasher.hashed;
    assert.deepEqual(await hasher.file(NODE), first);
    assert.equal(hasher.hashed, read, 'the settled node binary is not read again');
    assert.equal(first.size, statSync(NODE).size);
  });

  it('catches a swap by rename even when size, content length and mtime are kept (a new inode)', async () => {
    const dir = temp();
    const path = join(dir, 'server.js');
    writeFileSync(path, 'good();\n');
    const hasher = new FileHasher({ now: later });
    assert.equal((await hasher.file(path)).sha256, sha256('good();\n'));
    const { mtime } = statSync(path);
    writeFileSync(`${path}.new`, 'evil();\n');
    utimesSync(`${path}.new`, mtime, mtime);
    renameSync(`${path}.new`, path);
    assert.equal((await hasher.file(path)).sha256, sha256('evil();\n'));
  });

  it('catches a write in place whose mtime was put back (ctime moves, and no one can set it back)', async () => {
    const dir = temp();
    const path = join(dir, 'server.js');
    writeFileSync(path, 'good();\n');
    // Whole milliseconds, so putting it back from Node is exact (`touch -r` keeps nanoseconds too).
    utimesSync(path, new Date(1_700_000_000_000), new Date(1_700_000_000_000));
    const hasher = new FileHasher({ now: later });
    await hasher.file(path);
    overwriteKeepingMtime(path, 'evil();\n');
    assert.equal((await hasher.file(path)).sha256, sha256('evil();\n'));
  });

  it('never trusts the cache for a file changed just before it was hashed (file times tick coarsely)', async () => {
    const dir = temp();
    const path = join(dir, 'server.js');
    writeFileSync(path, 'fresh();\n');
    // The clock stands at the file's own write time: within the settle time however slow the machine is.
    const written = statSync(path).mtimeMs;
    const hasher = new FileHasher({ now: () => written });
    await hasher.file(path);
    await hasher.file(path);
    assert.equal(hasher.hashed, 2, 'a file written within the settle time is read every time');
  });

  it('refuses what is not a regular file', async () => {
    await assert.rejects(new FileHasher().file(temp()), /not a regular file/);
  });
});

describe('package digests', () => {
  function tree(): string {
    const dir = temp();
    mkdirSync(join(dir, 'lib'));
    mkdirSync(join(dir, 'node_modules', 'dep'), { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{"name":"p","version":"1.0.0"}');
    writeFileSync(join(dir, 'lib', 'a.js'), 'a\n');
    writeFileSync(join(dir, 'lib', 'b.js'), 'b\n');
    writeFileSync(join(dir, 'node_modules', 'dep', 'index.js'), 'dep\n');
    symlinkSync('lib/a.js', join(dir, 'main.js'));
    return dir;
  }

  it('is one line per file and link, sorted by path, with nested node_modules left out', async () => {
    const dir = tree();
    const digest = await new FileHasher().tree(dir);
    const lines = [
      `F lib/a.js ${sha256('a\n')}`,
      `F lib/b.js ${sha256('b\n')}`,
      'L main.js lib/a.js',
      `F package.json ${sha256('{"name":"p","version":"1.0.0"}')}`,
    ];
    assert.deepEqual(digest, { sha256: sha256(lines.join('\n')), files: 4 });
  });

  it('changes with any one file of the package, a link retargeted, or a file added; not with its dependencies', async () => {
    const hasher = new FileHasher();
    const base = (await hasher.tree(tree())).sha256;
    const changed = async (edit: (dir: string) => void) => {
      const dir = tree();
      edit(dir);
      return (await hasher.tree(dir)).sha256;
    };
    assert.notEqual(await changed((d) => writeFileSync(join(d, 'lib', 'b.js'), 'B\n')), base);
    assert.notEqual(await changed((d) => writeFileSync(join(d, 'lib', 'c.js'), '')), base);
    assert.notEqual(
      await changed((d) => {
        unlinkSync(join(d, 'main.js'));
        symlinkSync('lib/b.js', join(d, 'main.js'));
      }),
      base,
    );
    assert.equal(
      await changed((d) => writeFileSync(join(d, 'node_modules', 'dep', 'index.js'), 'other\n')),
      base,
    );
  });
});
