import { resolve } from 'node:path';
import { resolveValue } from '../config/secrets.ts';
import type { StateConfig } from './config.ts';
import { DeferredRecordStore, DeferredRevocationStore } from './deferred.ts';
import type { RecordStore } from './records.ts';
import { SqliteRecordStore } from './records-sqlite.ts';
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

/**
 * The configured store of versioned records (approvals, break-glass windows,
 * nonces): beside the revocations, in the same SQLite file, database or Redis.
 */
export function openRecordStore(cfg: StateConfig, baseDir: string): RecordStore {
  switch (cfg.store) {
    case 'sqlite':
      return new SqliteRecordStore(resolve(baseDir, cfg.path));
    case 'postgres': {
      const url = resolveValue(cfg.url, baseDir);
      return new DeferredRecordStore(async () => {
        const { PostgresRecordStore } = await import('./records-postgres.ts');
        return new PostgresRecordStore(url, cfg.prefix);
      });
    }
    case 'redis': {
      const url = resolveValue(cfg.url, baseDir);
      return new DeferredRecordStore(async () => {
        const { RedisRecordStore } = await import('./records-redis.ts');
        return new RedisRecordStore(url, cfg.prefix);
      });
    }
  }
}
