import { createHash } from 'node:crypto';
import { type BigIntStats, createReadStream } from 'node:fs';
import { readdir, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** A file's SHA-256 (hex) and size. */
export interface FileDigest {
  readonly sha256: string;
  readonly size: number;
}

/** A directory's digest over its files, sorted by path; `files` counts regular files and links. */
export interface TreeDigest {
  readonly sha256: string;
  readonly files: number;
}

/**
 * A file changed this recently (by its ctime) is hashed again next time: file
 * times are kept in coarse ticks, so a write right after a hash can leave every
 * stat field as it was. Two seconds covers the coarsest tick of common
 * filesystems. Git's index has the same "racy clean" problem and answer.
 */
export const SETTLE_MS = 2000;

/** The largest package a tree digest walks; beyond it the package is not verifiable. */
export const MAX_TREE_FILES = 50_000;

interface Cached {
  readonly key: string;
  readonly digest: FileDigest;
}

/**
 * Hashes files and package trees, caching each file's digest by its path and
 * identity (device, inode, size, mtime and ctime in nanoseconds), so a restart
 * rehashes nothing that did not change. A swap is still caught: a rename gives
 * another inode, a write in place moves ctime (which no user can set back,
 * unlike mtime with `touch -r`), and a file touched within `SETTLE_MS` of its
 * hash is never trusted from the cache.
 */
export class FileHasher {
  private readonly cache = new Map<string, Cached>();
  private readonly inFlight = new Map<string, Promise<FileDigest>>();
  private readonly now: () => number;
  /** Files actually read (not answered from the cache), for tests and the log. */
  hashed = 0;

  constructor(opts: { now?: () => number } = {}) {
    this.now = opts.now ?? Date.now;
  }

  private static process: FileHasher | undefined;

  /**
   * One cache for every gateway in this process: a digest is a fact about a
   * file's identity, so sharing it hands nothing between gateways but saves
   * each one hashing the runtime binary (100 MB and more) again.
   */
  static shared(): FileHasher {
    FileHasher.process ??= new FileHasher();
    return FileHasher.process;
  }

  async file(path: string): Promise<FileDigest> {
    const before = await stat(path, { bigint: true });
    if (!before.isFile()) throw new Error(`${path} is not a regular file`);
    const key = identity(before);
    const cached = this.cache.get(path);
    if (cached?.key === key) return cached.digest;
    const pending = this.inFlight.get(`${path}\u0000${key}`);
    if (pending) return pending;
    const run = this.read(path, before, key);
    this.inFlight.set(`${path}\u0000${key}`, run);
    try {
      return await run;
    } finally {
      this.inFlight.delete(`${path}\u0000${key}`);
    }
  }

  private async read(path: string, before: BigIntStats, key: string): Promise<FileDigest> {
    const startedAt = this.now();
    const sha256 = await sha256OfFile(path);
    this.hashed++;
    const after = await stat(path, { bigint: true });
    // Changed while it was read: what was hashed may be neither version.
    if (identity(after) !== key) throw new Error(`${path} changed while it was hashed`);
    const digest = { sha256, size: Number(before.size) };
    const settled = Number(before.ctimeNs / 1_000_000n) < startedAt - SETTLE_MS;
    if (settled) this.cache.set(path, { key, digest });
    else this.cache.delete(path);
    return digest;
  }

  /**
   * A digest of a directory's files: one line per entry, sorted by path in
   * byte order, `F <path> <sha256>` for a file and `L <path> <target>` for a
   * symbolic link (never followed); nested `node_modules` folders (the
   * package's own dependencies, laid out differently by each install) are left out.
   */
  async tree(dir: string): Promise<TreeDigest> {
    const entries = await walk(dir);
    const lines: string[] = [];
    // A few files at a time: a package of thousands must not open them all at once.
    for (let i = 0; i < entries.length; i += PARALLEL_READS) {
      const batch = entries.slice(i, i + PARALLEL_READS);
      lines.push(...(await Promise.all(batch.map((e) => this.line(dir, e)))));
    }
    const sha256 = createHash('sha256').update(lines.join('\n')).digest('hex');
    return { sha256, files: entries.length };
  }

  private async line(dir: string, e: { rel: string; link: boolean }): Promise<string> {
    const path = join(dir, e.rel);
    return e.link ? `L ${e.rel} ${await readlink(path)}` : `F ${e.rel} ${(await this.file(path)).sha256}`;
  }
}

/** Files hashed at once by a tree digest. */
const PARALLEL_READS = 16;

const identity = (s: BigIntStats): string => `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;

function sha256OfFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** Every file and link under `root`, relative paths with `/`, sorted in byte order. */
async function walk(root: string): Promise<{ rel: string; link: boolean }[]> {
  const out: { rel: string; link: boolean }[] = [];
  const pending = [''];
  while (pending.length > 0) {
    const rel = pending.pop()!;
    for (const entry of await readdir(join(root, rel), { withFileTypes: true })) {
      const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') pending.push(path);
      } else if (entry.isSymbolicLink()) out.push({ rel: path, link: true });
      else if (entry.isFile()) out.push({ rel: path, link: false });
      else throw new Error(`${join(root, path)} is neither a file, a folder nor a link`);
      if (out.length > MAX_TREE_FILES) throw new Error(`${root} holds over ${MAX_TREE_FILES} files`);
    }
  }
  return out.sort((a, b) => Buffer.compare(Buffer.from(a.rel), Buffer.from(b.rel)));
}
