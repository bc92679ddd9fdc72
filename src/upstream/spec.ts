import type { LoadedConfig } from '../config/load.ts';
import type { UpstreamConfig } from '../config/schema.ts';
import type { InstanceCredentials } from '../credentials/instance.ts';
import { ConfigError } from '../errors.ts';
import type { Logger } from '../observability/log.ts';
import { httpTransport } from './http.ts';
import type { UpstreamSpec } from './pool.ts';
import type { StdioStarts } from './starts.ts';

/**
 * Every configured upstream, as the pool spawns and connects it. Each stdio
 * start goes through `starts` (server pinning, audit); `credentials` mints the
 * credential of each instance of an upstream whose config names a per-instance
 * one (postgres-role); such an upstream without it is refused.
 */
export const upstreamSpecs = (
  loaded: LoadedConfig,
  log: Logger,
  starts: StdioStarts,
  credentials: ReadonlyMap<string, InstanceCredentials>,
): UpstreamSpec[] =>
  Object.entries(loaded.config.upstreams).map(([name, cfg]) =>
    upstreamSpec(name, cfg, loaded.baseDir, log, starts, credentials.get(name)),
  );

function upstreamSpec(
  name: string,
  cfg: UpstreamConfig,
  baseDir: string,
  log: Logger,
  starts: StdioStarts,
  credentials: InstanceCredentials | undefined,
): UpstreamSpec {
  const restart = cfg.transport === 'stdio' ? cfg.restart : { initialDelayMs: 250, maxDelayMs: 30_000 };
  if (cfg.credentials?.kind === 'postgres-role' && !credentials) {
    throw new ConfigError(`upstreams.${name}.credentials: no credential backend wired`, [
      { path: `upstreams.${name}.credentials`, message: 'no credential backend wired for it' },
    ]);
  }
  return {
    name,
    prefix: cfg.prefix ?? name,
    timeoutMs: cfg.timeoutMs,
    toolListCacheMs: cfg.toolListCacheMs,
    restart,
    isolation: cfg.isolation,
    ...(credentials ? { credentials } : {}),
    createTransport: (holder, start = {}) =>
      cfg.transport === 'stdio'
        ? starts.open(name, cfg, baseDir, holder, start.credential ?? {})
        : httpTransport(name, cfg, baseDir, log),
  };
}
