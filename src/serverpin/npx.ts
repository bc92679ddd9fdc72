import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { exists, type InstalledPackage, readPackage, UnverifiableLaunch } from './packages.ts';

/** What `npx ARGS` would run: the packages it installs and the command it runs from the first. */
export interface NpxRequest {
  /** Package specs as written (`pkg`, `pkg@1.2.3`, `@scope/pkg@^1`). */
  readonly packages: readonly string[];
  /** The bin to run, when `--package` named the packages. */
  readonly command?: string | undefined;
}

const FLAGS = new Set([
  '-y',
  '--yes',
  '--no',
  '-q',
  '--quiet',
  '--no-install',
  '--offline',
  '--prefer-offline',
]);

/** npx's own options up to the command; `-c` (a shell line) cannot be checked before it runs. */
export function npxRequest(args: readonly string[]): NpxRequest {
  const packages: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') return request(packages, args[i + 1]);
    if (arg === '-p' || arg === '--package') packages.push(args[++i] ?? '');
    else if (arg.startsWith('--package=')) packages.push(arg.slice('--package='.length));
    else if (arg === '-c' || arg === '--call' || arg.startsWith('--call='))
      throw new UnverifiableLaunch('npx -c runs a shell line');
    else if (!arg.startsWith('-')) return request(packages, arg);
    else if (!FLAGS.has(arg)) throw new UnverifiableLaunch(`npx option ${arg} is not understood`);
  }
  throw new UnverifiableLaunch('npx names no package');
}

function request(packages: string[], positional: string | undefined): NpxRequest {
  if (packages.length > 0) return { packages, command: positional };
  if (!positional) throw new UnverifiableLaunch('npx names no package');
  return { packages: [positional] };
}

/** `@scope/name@range` -> `@scope/name`; a path, URL or git spec cannot be found installed by name. */
export function specName(spec: string): string {
  if (/^[./~]|:/.test(spec)) throw new UnverifiableLaunch(`npx spec ${spec} is not a registry package`);
  const at = spec.indexOf('@', spec.startsWith('@') ? 1 : 0);
  const name = at === -1 ? spec : spec.slice(0, at);
  if (!/^(@[a-z0-9._~-]+\/)?[a-z0-9._~-]+$/i.test(name))
    throw new UnverifiableLaunch(`npx spec ${spec} names no package`);
  return name;
}

/** Whether a spec names one exact version: anything else npx may fetch anew at start. */
export const exactVersion = (spec: string): boolean => /@\d+\.\d+\.\d+(-[\w.]+)?$/.test(spec);

/**
 * Where npx finds its first package without fetching it: installed in the
 * project (a `node_modules` in the working folder or above it), else in npx's
 * cache, in the folder npx names by a hash of the package specs. A package in
 * neither would be downloaded at start: it cannot be checked first, so it is
 * refused (install it, or run the npx command once by hand).
 */
export async function npxPackage(
  req: NpxRequest,
  where: { cwd: string; home?: string | undefined; npmCache?: string | undefined },
): Promise<InstalledPackage> {
  const name = specName(req.packages[0]!);
  for (let dir = where.cwd; ; dir = dirname(dir)) {
    const local = join(dir, 'node_modules', name);
    if (await exists(join(local, 'package.json'))) return readPackage(local);
    if (dir === dirname(dir)) break;
  }
  const cache = where.npmCache ?? (where.home ? join(where.home, '.npm') : undefined);
  if (cache) {
    const cached = join(cache, '_npx', npxCacheKey(req.packages), 'node_modules', name);
    if (await exists(join(cached, 'package.json'))) return readPackage(cached);
  }
  throw new UnverifiableLaunch(`npx would fetch ${req.packages[0]} at start: it is not installed`);
}

/** npx's cache folder name for a set of specs (libnpmexec: sha512 of the sorted specs, 16 hex digits). */
export function npxCacheKey(packages: readonly string[]): string {
  const sorted = [...packages].sort((a, b) => a.localeCompare(b, 'en'));
  return createHash('sha512').update(sorted.join('\n')).digest('hex').slice(0, 16);
}
