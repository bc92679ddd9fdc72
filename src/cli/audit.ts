import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCheckpoint } from '../audit/checkpoint.ts';
import {
  consistencyProof,
  inclusionProof,
  leafHash,
  verifyConsistency,
  verifyInclusion,
} from '../audit/merkle.ts';
import { parseVerifierKey, type Verifier } from '../audit/note.ts';
import { auditSigner } from '../audit/open.ts';
import { formatProof, verifyReceipt } from '../audit/receipt.ts';
import { type EntryFilter, lastMatchingEntries, matchingEntries } from '../audit/search.ts';
import type { AuditStore, StoredEntry } from '../audit/store.ts';
import { exportTiles } from '../audit/tiles.ts';
import { verifyLog } from '../audit/verify.ts';
import { PortcullisError, UsageError } from '../errors.ts';
import { parseCommandArgs, required } from './args.ts';
import { policyCommand } from './audit-policy.ts';
import { replayCommand } from './audit-replay.ts';
import { auditSetupFromConfig, freshCheckpoint, quiet, withStore } from './audit-store.ts';
import { USAGE } from './usage.ts';

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};
const fail = (msg: string): number => {
  process.stderr.write(`portcullis audit: ${msg}\n`);
  return 1;
};

async function allLeaves(
  store: AuditStore,
  size: number,
): Promise<{ entries: StoredEntry[]; leaves: Buffer[] }> {
  const entries = await store.entries(0, size);
  if (entries.length !== size || entries.some((e, i) => e.index !== i)) {
    throw new PortcullisError('ERR_AUDIT_TAMPERED', 'entries missing; run audit verify');
  }
  return { entries, leaves: entries.map((e) => leafHash(e.leaf)) };
}

export async function auditCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const commands: Record<string, (a: string[]) => Promise<number>> = {
    verify,
    checkpoint,
    proof,
    'verify-proof': verifyProof,
    consistency,
    export: exportCmd,
    tail,
    replay: replayCommand,
    policy: policyCommand,
  };
  const command = sub ? commands[sub] : undefined;
  if (!command) throw new UsageError(`audit: unknown or missing command\n${USAGE.audit}`);
  return command(rest);
}

async function verify(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(args, {
    config: { type: 'string' },
    key: { type: 'string' },
    checkpoint: { type: 'string' },
  });
  const setup = auditSetupFromConfig(required(values.config, '--config'));
  const verifier: Verifier = values.key ? parseVerifierKey(values.key) : auditSigner(setup, quiet);
  const trusted = values.checkpoint ? readFileSync(values.checkpoint, 'utf8') : undefined;
  const result = await withStore(setup, (store) => verifyLog(store, verifier, trusted));
  if (!result.ok) {
    out(JSON.stringify(result));
    return fail(`verification failed at index ${result.index}: ${result.reason}`);
  }
  out(JSON.stringify(result));
  // What the database alone cannot prove: someone who can write it can delete checkpoints and rewrite after them.
  if (result.signedSize < result.size)
    process.stderr.write(
      `portcullis audit: entries ${result.signedSize}..${result.size - 1} are not covered by a signed checkpoint yet\n`,
    );
  if (!result.anchored)
    process.stderr.write(
      'portcullis audit: no --checkpoint given: a rollback, or a rewrite after deleted checkpoints, is only caught against a checkpoint kept outside the database (yours, or a witness)\n',
    );
  return 0;
}

async function checkpoint(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(args, { config: { type: 'string' } });
  const setup = auditSetupFromConfig(required(values.config, '--config'));
  const note = await withStore(setup, async (store) => {
    const latest = await freshCheckpoint(setup, store);
    const size = openCheckpoint(latest, auditSigner(setup, quiet)).size;
    // Witness cosignatures are further signature lines of the same note.
    return latest + (await store.cosignatures(size)).map((c) => `${c.line}\n`).join('');
  });
  process.stdout.write(note);
  return 0;
}

async function proof(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(args, {
    config: { type: 'string' },
    index: { type: 'string' },
    out: { type: 'string' },
  });
  const setup = auditSetupFromConfig(required(values.config, '--config'));
  const index = nonNegative(required(values.index, '--index'), '--index');
  const dir = required(values.out, '--out');
  return withStore(setup, async (store) => {
    const note = await freshCheckpoint(setup, store);
    const c = openCheckpoint(note, auditSigner(setup, quiet));
    if (index >= c.size) return fail(`no entry ${index}: the log has ${c.size}`);
    const { entries, leaves } = await allLeaves(store, c.size);
    const path = inclusionProof(leaves, index, c.size);
    if (!verifyInclusion(index, c.size, leaves[index]!, path, c.root))
      return fail('stored entries do not match the checkpoint');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'entry'), entries[index]!.leaf);
    writeFileSync(join(dir, 'proof'), formatProof(index, path, note));
    out(JSON.stringify({ index, size: c.size, dir }));
    return 0;
  });
}

async function verifyProof(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, { key: { type: 'string' } }, true);
  const dir = positionals[0];
  if (!dir || positionals.length !== 1) throw new UsageError('verify-proof: exactly one DIR is required');
  const verifier = parseVerifierKey(required(values.key, '--key'));
  const entry = readFileSync(join(dir, 'entry'));
  try {
    const r = verifyReceipt(entry, readFileSync(join(dir, 'proof'), 'utf8'), verifier);
    out(JSON.stringify({ ok: true, index: r.index, size: r.size }));
    return 0;
  } catch (err) {
    if (err instanceof PortcullisError) return fail(`[${err.code}] ${err.message}`);
    throw err;
  }
}

async function consistency(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(args, {
    config: { type: 'string' },
    old: { type: 'string' },
    out: { type: 'string' },
  });
  const setup = auditSetupFromConfig(required(values.config, '--config'));
  const oldNote = readFileSync(required(values.old, '--old'), 'utf8');
  const dir = required(values.out, '--out');
  return withStore(setup, async (store) => {
    const verifier = auditSigner(setup, quiet);
    const old = openCheckpoint(oldNote, verifier);
    const note = await freshCheckpoint(setup, store);
    const cur = openCheckpoint(note, verifier);
    if (old.size > cur.size)
      return fail(`the log (${cur.size}) is shorter than the old checkpoint (${old.size})`);
    const { leaves } = await allLeaves(store, cur.size);
    const path = old.size === 0 ? [] : consistencyProof(leaves, old.size, cur.size);
    if (old.size > 0 && !verifyConsistency(old.size, cur.size, path, old.root, cur.root)) {
      return fail(`the log does not extend the old checkpoint of size ${old.size}`);
    }
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'checkpoint'), note);
    writeFileSync(join(dir, 'proof'), path.map((h) => `${h.toString('base64')}\n`).join(''));
    out(JSON.stringify({ old: old.size, size: cur.size, dir }));
    return 0;
  });
}

async function exportCmd(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(args, { config: { type: 'string' }, tiles: { type: 'string' } });
  const setup = auditSetupFromConfig(required(values.config, '--config'));
  const dir = required(values.tiles, '--tiles');
  return withStore(setup, async (store) => {
    const note = await freshCheckpoint(setup, store);
    const c = openCheckpoint(note, auditSigner(setup, quiet));
    const { entries, leaves } = await allLeaves(store, c.size);
    const files = exportTiles(
      dir,
      entries.map((e) => e.leaf),
      leaves,
      note,
    );
    out(JSON.stringify({ size: c.size, files, dir }));
    return 0;
  });
}

const printEntry = (e: StoredEntry, extra: Record<string, unknown> = {}): void =>
  out(JSON.stringify({ index: e.index, ...extra, record: JSON.parse(e.leaf.toString('utf8')) }));

async function tail(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(args, {
    config: { type: 'string' },
    principal: { type: 'string' },
    tool: { type: 'string' },
    decision: { type: 'string' },
    limit: { type: 'string', default: '20' },
    follow: { type: 'boolean', short: 'f', default: false },
  });
  const setup = auditSetupFromConfig(required(values.config, '--config'));
  const limit = nonNegative(values.limit, '--limit');
  const filter: EntryFilter = {
    ...(values.principal ? { principal: values.principal } : {}),
    ...(values.tool ? { tool: values.tool } : {}),
    ...(values.decision ? { decision: values.decision } : {}),
  };
  return withStore(setup, async (store) => {
    let seen = (await store.head()).size;
    for (const e of await lastMatchingEntries(store, filter, limit, seen)) printEntry(e);
    while (values.follow) {
      await new Promise((r) => setTimeout(r, 500));
      const size = (await store.head()).size;
      for (const e of await matchingEntries(store, filter, seen, size)) printEntry(e);
      seen = size;
    }
    return 0;
  });
}

function nonNegative(v: string, flag: string): number {
  if (!/^(0|[1-9][0-9]*)$/.test(v)) throw new UsageError(`${flag} must be a non-negative integer`);
  return Number(v);
}
