import { createHash } from 'node:crypto';
import type { FileHasher } from './digest.ts';
import type { FileRole, LaunchPlan } from './launch.ts';

export interface FileHash {
  readonly role: FileRole;
  readonly path: string;
  readonly sha256: string;
}

export interface PackageHash {
  readonly name: string;
  readonly version: string;
  readonly dir: string;
  /** Digest of the package folder's files (see `FileHasher.tree`). */
  readonly sha256: string;
  readonly files: number;
  /** What npm's lock file records for it, when it does. */
  readonly integrity?: string | undefined;
}

/** Everything hashed of one launch; `digest` stands for all of it (paths aside) in one value. */
export interface Fingerprint {
  readonly digest: string;
  readonly files: readonly FileHash[];
  readonly package?: PackageHash | undefined;
}

/** Hashes every file of a plan and its package folder. */
export async function fingerprint(plan: LaunchPlan, hasher: FileHasher): Promise<Fingerprint> {
  const files = await Promise.all(
    plan.files.map(async (f) => ({ role: f.role, path: f.path, sha256: (await hasher.file(f.path)).sha256 })),
  );
  const pkg = plan.package;
  const tree = pkg ? await hasher.tree(pkg.dir) : undefined;
  const packageHash: PackageHash | undefined =
    pkg && tree
      ? {
          name: pkg.name,
          version: pkg.version,
          dir: pkg.dir,
          sha256: tree.sha256,
          files: tree.files,
          ...(pkg.lockIntegrity ? { integrity: pkg.lockIntegrity } : {}),
        }
      : undefined;
  return { digest: digestOf(files, packageHash), files, ...(packageHash ? { package: packageHash } : {}) };
}

/** One line per file role and its hash, then the package: where the files are does not count, what they hold does. */
function digestOf(files: readonly FileHash[], pkg: PackageHash | undefined): string {
  const lines = files.map((f) => `${f.role} ${f.sha256}`);
  if (pkg) lines.push(`package ${pkg.name}@${pkg.version} ${pkg.sha256}`);
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

/** The code the server itself is made of: the script an interpreter or npx runs, else the command's file. */
export const entryOf = (fp: Fingerprint): FileHash =>
  fp.files.find((f) => f.role === 'script') ?? fp.files.find((f) => f.role === 'command')!;

/** A pin written in the config: each value given must match; what it leaves out is not checked. */
export interface ConfigPin {
  readonly sha256?: string | undefined;
  readonly package?:
    | { readonly name: string; readonly integrity?: string | undefined; readonly sha256?: string | undefined }
    | undefined;
}

/** What differs between a launch and its config pin, one phrase each (for the log and the audit record). */
export function configMismatches(fp: Fingerprint, pin: ConfigPin): string[] {
  const out: string[] = [];
  if (pin.sha256 !== undefined && entryOf(fp).sha256 !== pin.sha256) out.push(`${entryOf(fp).role} sha256`);
  const want = pin.package;
  if (!want) return out;
  const have = fp.package;
  if (!have) return [...out, 'no package'];
  if (have.name !== want.name) out.push('package name');
  if (want.sha256 !== undefined && have.sha256 !== want.sha256) out.push('package sha256');
  if (want.integrity !== undefined && have.integrity !== want.integrity) out.push('package integrity');
  return out;
}

/** What differs between a launch and a stored pin, one phrase each. */
export function storedMismatches(fp: Fingerprint, pinned: Fingerprint): string[] {
  if (fp.digest === pinned.digest) return [];
  const out: string[] = [];
  const roles = new Set([...fp.files, ...pinned.files].map((f) => f.role));
  for (const role of roles) {
    const a = fp.files.find((f) => f.role === role)?.sha256;
    const b = pinned.files.find((f) => f.role === role)?.sha256;
    if (a !== b) out.push(`${role} sha256`);
  }
  const [a, b] = [fp.package, pinned.package];
  if (a?.name !== b?.name || a?.version !== b?.version) out.push('package version');
  else if (a?.sha256 !== b?.sha256) out.push('package sha256');
  return out.length > 0 ? out : ['fingerprint'];
}

/** The fingerprint as kept in a pin and an audit record. */
export const pinnedForm = (fp: Fingerprint) => ({
  digest: fp.digest,
  files: fp.files.map((f) => ({ role: f.role, path: f.path, sha256: f.sha256 })),
  ...(fp.package ? { package: { ...fp.package } } : {}),
});
