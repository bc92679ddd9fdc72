import { loadConfigFile } from '../config/load.ts';
import { UsageError } from '../errors.ts';
import { openRevocationStore } from '../state/open.ts';
import type { RevocationKind } from '../state/revocations.ts';
import { AS_OPTION, adminAct, adminActor, recordAdminAct } from './admin-audit.ts';
import { parseCommandArgs, required } from './args.ts';

/**
 * `portcullis revoke --jti X | --sub S | --workload SPIFFE_ID`: refused from
 * the next call on. The revocation takes effect first and is then recorded in
 * the audit log: a log that is down must not keep a leaked token working.
 * `--list` prints what is revoked, oldest first.
 */
export async function revokeCommand(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(args, {
    config: { type: 'string', short: 'c' },
    jti: { type: 'string' },
    sub: { type: 'string' },
    workload: { type: 'string' },
    reason: { type: 'string' },
    list: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    ...AS_OPTION,
  });
  if (values.list) return list(required(values.config, '--config'), values.json);
  const chosen = (['jti', 'sub', 'workload'] as const).filter((k) => values[k] !== undefined);
  if (chosen.length !== 1) throw new UsageError('give exactly one of --jti, --sub, --workload');
  const kind: RevocationKind = chosen[0]!;
  const value = required(values[kind], `--${kind}`);
  const loaded = loadConfigFile(required(values.config, '--config'));
  const detail = { revoked: { kind, value }, ...(values.reason ? { reason: values.reason } : {}) };
  // Made first: an operator who may not act, or a record too large, refuses before anything is revoked.
  const act = adminAct('revoked', adminActor(loaded, values.as), detail, {
    what: `${kind} ${value} is revoked`,
  });
  const store = openRevocationStore(loaded.config.state, loaded.baseDir);
  try {
    await store.revoke({
      kind,
      value,
      revokedAt: Date.now(),
      ...(values.reason ? { reason: values.reason } : {}),
    });
  } finally {
    await store.close();
  }
  process.stdout.write(`${JSON.stringify({ event: 'revoked', kind, value })}\n`);
  await recordAdminAct(loaded, act);
  return 0;
}

/** Every revocation in the state store: one JSON object a line with --json, else a line of text each. */
async function list(configPath: string, json: boolean): Promise<number> {
  const loaded = loadConfigFile(configPath);
  const store = openRevocationStore(loaded.config.state, loaded.baseDir);
  try {
    for (const r of await store.list()) {
      const line = json
        ? JSON.stringify(r)
        : [new Date(r.revokedAt).toISOString(), r.kind, JSON.stringify(r.value), r.reason ?? ''].join('  ');
      process.stdout.write(`${line.trimEnd()}\n`);
    }
  } finally {
    await store.close();
  }
  return 0;
}
