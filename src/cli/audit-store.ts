import { AuditLog } from '../audit/log.ts';
import type { Signer } from '../audit/note.ts';
import { type AuditSetup, auditSigner, openAuditStore } from '../audit/open.ts';
import type { AuditStore } from '../audit/store.ts';
import { loadConfigFile } from '../config/load.ts';
import { PortcullisError, UsageError } from '../errors.ts';
import { createLogger, type Logger } from '../observability/log.ts';

/** What the audit commands share: the config's audit section, its store, a checkpoint of the head. */

export function auditSetupFromConfig(path: string): AuditSetup {
  const loaded = loadConfigFile(path);
  if (!loaded.config.audit) throw new UsageError(`${path} has no audit section`);
  return { config: loaded.config.audit, baseDir: loaded.baseDir };
}

export const quiet = createLogger('error');

export async function withStore<T>(setup: AuditSetup, fn: (store: AuditStore) => Promise<T>): Promise<T> {
  const store = await openAuditStore(setup);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Signs a checkpoint of the head if it grew, after checking that the stored log extends the last one. */
export async function signHead(store: AuditStore, signer: Signer, log: Logger = quiet): Promise<void> {
  const auditLog = new AuditLog(store, {
    signer,
    origin: signer.name,
    checkpointEveryEntries: Number.MAX_SAFE_INTEGER,
    checkpointEveryMs: 2 ** 30,
    groupCommit: false,
    maxBatch: 1,
    log,
  });
  try {
    await auditLog.checkpoint();
  } finally {
    auditLog.stopTimer();
  }
}

/** Signs a checkpoint of the current head if it grew, then returns the latest stored checkpoint note. */
export async function freshCheckpoint(setup: AuditSetup, store: AuditStore): Promise<string> {
  await signHead(store, auditSigner(setup, quiet));
  const last = (await store.checkpoints()).at(-1);
  if (!last) throw new PortcullisError('ERR_AUDIT_INCONSISTENT', 'the log is empty: no checkpoint yet');
  return last.note;
}
