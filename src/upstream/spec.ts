import type { LoadedConfig } from '../config/load.ts';
import type { UpstreamConfig } from '../config/schema.ts';
import type { Logger } from '../observability/log.ts';
import { httpTransport } from './http.ts';
import type { UpstreamSpec } from './pool.ts';
import { stdioTransport } from './stdio.ts';

/** Every configured upstream, as the pool spawns and connects it. */
export const upstreamSpecs = (loaded: LoadedConfig, log: Logger): UpstreamSpec[] =>
  Object.entries(loaded.config.upstreams).map(([name, cfg]) => upstreamSpec(name, cfg, loaded.baseDir, log));

function upstreamSpec(name: string, cfg: UpstreamConfig, baseDir: string, log: Logger): UpstreamSpec {
  const restart = cfg.transport === 'stdio' ? cfg.restart : { initialDelayMs: 250, maxDelayMs: 30_000 };
  return {
    name,
    prefix: cfg.prefix ?? name,
    timeoutMs: cfg.timeoutMs,
    restart,
    isolation: cfg.isolation,
    createTransport: () =>
      cfg.transport === 'stdio'
        ? stdioTransport(name, cfg, baseDir, log)
        : httpTransport(name, cfg, baseDir, log),
  };
}
