import { closeSync, mkdirSync, openSync } from 'node:fs';

/**
 * Creates `dir` (and any parent it has to create) readable by the owner only.
 * A directory that already exists is left as its owner set it.
 */
export function makePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/**
 * Creates `path` empty and owner-only (0600) unless it exists. SQLite gives a
 * database's -wal and -shm files the mode of the database file, so creating
 * it first covers them too.
 */
export function makePrivateFile(path: string): void {
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}
