import { resolve } from 'node:path';
import { resolveValue } from '../config/secrets.ts';
import type { StateConfig } from './config.ts';
import { DeferredRevocationStore } from './deferred.ts';
import type { RevocationStore } from './revocations.ts';
import { SqliteRevocationStore } from './sqlite.ts';

/**
 * The configured revocation store; paths and references resolve from the
 * config's folder. The shared stores' drivers load only when configured.
 */
export function openRevocationStore(cfg: StateConfig, baseDir: string): RevocationStore {
  switch (cfg.store) {
    case 'sqlite':
      return new SqliteRevocationStore(resolve(baseDir, cfg.path));
    case 'postgres': {
      const url = resolveValue(cfg.url, baseDir);
      return new DeferredRevocationStore(async () => {
        const { PostgresRevocationStore } = await import('./postgres.ts');
        return new PostgresRevocationStore(url, cfg.prefix);
      });
    }
    case 'redis': {
      const url = resolveValue(cfg.url, baseDir);
      return new DeferredRevocationStore(async () => {
        const { RedisRevocationStore } = await import('./redis.ts');
        return new RedisRevocationStore(url, cfg.prefix);
      });
    }
  }
}
