import { homedir } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { Config } from '../config/schema.ts';

/**
 * What of the gateway's own a sandboxed upstream must not see: its config
 * file, key directories, audit log (and the keys beside it), state store,
 * every file a `file:` reference names, its home directory, and the files of
 * every other upstream (their writable paths and working directories).
 */
export function gatewayPrivatePaths(
  config: Config,
  opts: { baseDir: string; configPath?: string; home?: string; upstream: string },
): string[] {
  const at = (p: string) => resolve(opts.baseDir, p);
  const paths = [opts.home ?? homedir(), ...fileReferences(config).map(at)];
  if (opts.configPath) paths.push(resolve(opts.configPath));
  if (config.identity.gatewayTokens) paths.push(at(config.identity.gatewayTokens.keyDir));
  // The result-signing keys: whoever reads them can forge an attestation on any result.
  paths.push(at(config.attest.keyDir));
  // The gateway's own folder: the audit log and the keys generated beside it when the config names
  // none (with no audit section, or a PostgreSQL log whose keys are not references), the default key dirs.
  paths.push(at(GATEWAY_DIR));
  // The audit log's directory holds its signing and HMAC keys too.
  if (config.audit?.store === 'sqlite') paths.push(dirname(at(config.audit.path)));
  if (config.state.store === 'sqlite')
    paths.push(at(config.state.path), ...sqliteSidecars(at(config.state.path)));
  for (const [name, up] of Object.entries(config.upstreams)) {
    if (name === opts.upstream || up.transport !== 'stdio') continue;
    if (up.cwd) paths.push(at(up.cwd));
    if (up.sandbox && up.sandbox !== 'off') paths.push(...up.sandbox.writable.map(at));
  }
  return [...new Set(paths)].filter((p) => p !== '/');
}

/** Where the gateway keeps what it generates for itself (keys, the default audit log), relative to its config. */
const GATEWAY_DIR = '.portcullis';

const sqliteSidecars = (p: string): string[] => [`${p}-wal`, `${p}-shm`, `${p}-journal`];

/** Every `file:PATH` secret reference anywhere in the config. */
function fileReferences(value: unknown): string[] {
  if (typeof value === 'string') return value.startsWith('file:') ? [value.slice(5)] : [];
  if (Array.isArray(value)) return value.flatMap(fileReferences);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(fileReferences);
  return [];
}
