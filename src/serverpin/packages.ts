import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';

/** An installed npm package: where it is, what it says it is, and what npm recorded installing. */
export interface InstalledPackage {
  readonly name: string;
  readonly version: string;
  readonly dir: string;
  /** The `integrity` npm's lock file records for this install (its tarball's SRI hash), when one does. */
  readonly lockIntegrity?: string | undefined;
}

/** Why the code a launch would run cannot be checked before it runs; the start is refused. */
export class UnverifiableLaunch extends Error {}

export const exists = (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false,
  );

async function readJson(path: string): Promise<Record<string, unknown> | undefined> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The installed package a file belongs to: the nearest folder above it that
 * sits directly in a `node_modules` (or a scope folder in one) and holds a
 * package.json. Undefined for a file outside any `node_modules`.
 */
export async function packageOf(file: string): Promise<InstalledPackage | undefined> {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    const parent = dirname(dir);
    const inModules =
      basename(parent) === 'node_modules' ||
      (basename(parent).startsWith('@') && basename(dirname(parent)) === 'node_modules');
    if (inModules && (await exists(join(dir, 'package.json')))) return readPackage(dir);
  }
  return undefined;
}

/** The package installed in `dir`; its name and version come from its package.json. */
export async function readPackage(dir: string): Promise<InstalledPackage> {
  const manifest = await readJson(join(dir, 'package.json'));
  if (typeof manifest?.name !== 'string' || typeof manifest.version !== 'string')
    throw new UnverifiableLaunch(`${dir}/package.json names no package name and version`);
  return {
    name: manifest.name,
    version: manifest.version,
    dir,
    lockIntegrity: await lockIntegrity(dir),
  };
}

/** The main script a package's `bin` names for `command` (its only one, or the one named after the package). */
export async function packageBin(pkg: InstalledPackage, command?: string): Promise<string> {
  const manifest = await readJson(join(pkg.dir, 'package.json'));
  const bin = manifest?.bin;
  const unscoped = pkg.name.replace(/^@[^/]+\//, '');
  const entries =
    typeof bin === 'string' ? [[unscoped, bin]] : bin && typeof bin === 'object' ? Object.entries(bin) : [];
  const wanted = command ?? unscoped;
  const chosen = entries.length === 1 ? entries[0] : entries.find(([name]) => name === wanted);
  if (!chosen || typeof chosen[1] !== 'string')
    throw new UnverifiableLaunch(`${pkg.name} has no bin named ${wanted}`);
  return join(pkg.dir, chosen[1]);
}

/**
 * What npm's lock file says it installed in `dir`: the hidden lock file
 * (`node_modules/.package-lock.json`, written at install) of the nearest
 * install root, else that root's `package-lock.json`.
 */
async function lockIntegrity(dir: string): Promise<string | undefined> {
  const parts = dir.split(sep);
  const at = parts.indexOf('node_modules');
  if (at < 1) return undefined;
  const root = parts.slice(0, at).join(sep) || sep;
  const key = relative(root, dir).split(sep).join('/');
  for (const lock of [join(root, 'node_modules', '.package-lock.json'), join(root, 'package-lock.json')]) {
    const packages = (await readJson(lock))?.packages;
    if (!packages || typeof packages !== 'object') continue;
    const entry = (packages as Record<string, unknown>)[key];
    const integrity =
      entry && typeof entry === 'object' ? (entry as { integrity?: unknown }).integrity : undefined;
    if (typeof integrity === 'string') return integrity;
  }
  return undefined;
}
