import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { LoadedConfig } from '../config/load.ts';
import { resolveValue } from '../config/secrets.ts';
import { ConfigError } from '../errors.ts';
import type { Logger } from '../observability/log.ts';
import { makePrivateDir } from '../private-files.ts';
import { type AuditConfig, auditSchema } from './config.ts';
import { AuditLog } from './log.ts';
import { generateSignerKey, parseSignerKey, type Signer } from './note.ts';
import type { AuditStore, CommitSync } from './store.ts';
import { SqliteAuditStore } from './store-sqlite.ts';
import { parseWitnessKey } from './witness.ts';

export const DEFAULT_ORIGIN = 'portcullis.local/audit';

export interface AuditSetup {
  readonly config: AuditConfig;
  /** Directory relative paths and generated keys resolve from. */
  readonly baseDir: string;
}

/** The config's audit section, or the default SQLite log beside the config when there is none. */
export const DEFAULT_AUDIT_PATH = '.portcullis/audit/audit.db';

export function auditSetup(loaded: LoadedConfig, log: Logger): AuditSetup {
  const section = loaded.config.audit;
  if (section) return { config: section, baseDir: loaded.baseDir };
  // Without an audit section the log still persists (beside the config), so a restart never loses it.
  const path = DEFAULT_AUDIT_PATH;
  log.warn('AUDIT: no audit section in the config; recording to the default SQLite log with generated keys', {
    path: resolve(loaded.baseDir, path),
  });
  return { config: auditSchema.parse({ path }), baseDir: loaded.baseDir };
}

export function sqlitePath(setup: AuditSetup): string {
  return resolve(setup.baseDir, setup.config.path);
}

const keyDir = (setup: AuditSetup): string => dirname(sqlitePath(setup));

/** Reads a referenced key, or generates one beside the log on first start (said loudly). */
function keyText(
  setup: AuditSetup,
  ref: string | undefined,
  file: string,
  make: () => string,
  log: Logger,
): string {
  if (ref) return resolveValue(ref, setup.baseDir);
  const path = join(keyDir(setup), file);
  if (!existsSync(path)) {
    makePrivateDir(dirname(path));
    try {
      writeFileSync(path, `${make()}\n`, { mode: 0o600, flag: 'wx' });
      log.warn('AUDIT: generated a key; keep it safe and back it up', { path });
    } catch (err) {
      // Another replica or process generated it first: use theirs.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return resolveValue(`file:${path}`, setup.baseDir);
}

export function auditSigner(setup: AuditSetup, log: Logger): Signer {
  const name = setup.config.origin ?? DEFAULT_ORIGIN;
  const signer = parseSignerKey(
    keyText(setup, setup.config.signingKey, 'signing.key', () => generateSignerKey(name), log),
  );
  if (setup.config.origin && signer.name !== setup.config.origin) {
    throw new ConfigError(
      `audit.origin "${setup.config.origin}" is not the signing key's name "${signer.name}"`,
      [{ path: 'audit.origin', message: 'must equal the signing key name' }],
    );
  }
  return signer;
}

export function auditHmacKey(setup: AuditSetup, log: Logger): Buffer {
  const text = keyText(
    setup,
    setup.config.hmacKey,
    'hmac.key',
    () => randomBytes(32).toString('base64'),
    log,
  );
  if (text.length < 16) throw new ConfigError('audit.hmacKey is too short (at least 16 characters)');
  return Buffer.from(text, 'utf8');
}

export async function openAuditStore(
  setup: AuditSetup,
  opts: { readOnly?: boolean; commitSync?: CommitSync } = {},
): Promise<AuditStore> {
  const c = setup.config;
  if (c.store === 'postgres') {
    if (!c.url)
      throw new ConfigError('audit.url is required for store: postgres', [
        { path: 'audit.url', message: 'required' },
      ]);
    // Loaded only when configured: a SQLite gateway never loads `pg`.
    const { PgAuditStore } = await import('./store-pg.ts');
    return PgAuditStore.open(resolveValue(c.url, setup.baseDir), c.table, opts.commitSync);
  }
  return new SqliteAuditStore(sqlitePath(setup), opts);
}

export interface OpenAudit {
  readonly log: AuditLog;
  readonly hmacKey: Buffer;
  readonly clearArguments: readonly string[];
}

export async function openAudit(setup: AuditSetup, log: Logger): Promise<OpenAudit> {
  const signer = auditSigner(setup, log);
  const hmacKey = auditHmacKey(setup, log);
  const c = setup.config;
  for (const w of c.witnesses) parseWitnessKey(w.key);
  const durability = c.durability;
  // Every mode commits without an fsync of its own; the log asks for one where its mode needs it.
  const store = await openAuditStore(setup, { commitSync: 'deferred' });
  const auditLog = new AuditLog(store, {
    durability,
    signer,
    origin: signer.name,
    checkpointEveryEntries: c.checkpoint.everyEntries,
    checkpointEveryMs: c.checkpoint.everyMs,
    groupCommit: c.groupCommit.enabled,
    maxBatch: c.groupCommit.maxBatch,
    log,
    witnesses: c.witnesses,
  });
  try {
    await auditLog.init();
  } catch (err) {
    auditLog.stopTimer();
    await store.close().catch(() => {});
    throw err;
  }
  return { log: auditLog, hmacKey, clearArguments: c.clearArguments };
}
