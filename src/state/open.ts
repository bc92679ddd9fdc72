import { resolve } from 'node:path';
import { resolveValue } from '../config/secrets.ts';
import type { StateConfig } from './config.ts';
import { PostgresRevocationStore } from './postgres.ts';
import { RedisRevocationStore } from './redis.ts';
import type { RevocationStore } from './revocations.ts';
import { SqliteRevocationStore } from './sqlite.ts';

/** The configured revocation store; paths and references resolve from the config's folder. */
export function openRevocationStore(cfg: StateConfig, baseDir: string): RevocationStore {
  switch (cfg.store) {
    case 'sqlite':
      return new SqliteRevocationStore(resolve(baseDir, cfg.path));
    case 'postgres':
      return new PostgresRevocationStore(resolveValue(cfg.url, baseDir), cfg.prefix);
    case 'redis':
      return new RedisRevocationStore(resolveValue(cfg.url, baseDir), cfg.prefix);
  }
}
