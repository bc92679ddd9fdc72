#!/usr/bin/env node
/**
 * The audit log at scale, for `npm run bench -- --scale`: one process per step,
 * so each step's peak memory is its own.
 *
 *   node bench/scale-audit.ts generate --dir DIR --entries N [--tail T]
 *   node bench/scale-audit.ts start --dir DIR      # the writer's start-up
 *   node bench/scale-audit.ts verify --dir DIR     # what `portcullis audit verify` runs
 *
 * `generate` writes a SQLite log of N decision records in DIR (keys beside it)
 * with a signed checkpoint every 256 entries (the default `checkpoint.everyEntries`),
 * its range stored with it as the writer stores it, then T more entries after the
 * last checkpoint (a writer stopped between checkpoints). Synchronous writes are
 * off while generating: this is a fixture, not the append path. Each step prints
 * one JSON line: its figures, milliseconds of wall time, and the process's peak
 * RSS (`maxRSS` of `process.resourceUsage()`, in MB).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { signCheckpoint } from '../src/audit/checkpoint.ts';
import { auditSchema } from '../src/audit/config.ts';
import { canonicalize } from '../src/audit/jcs.ts';
import { metaOfRecord } from '../src/audit/meta.ts';
import { generateSignerKey, parseSignerKey } from '../src/audit/note.ts';
import { type AuditSetup, openAudit, openAuditStore } from '../src/audit/open.ts';
import type { AppendItem } from '../src/audit/store.ts';
import { SqliteAuditStore } from '../src/audit/store-sqlite.ts';
import { verifyLog } from '../src/audit/verify.ts';
import { silentLogger } from '../src/observability/log.ts';

const ORIGIN = 'bench.portcullis/audit';
const CHECKPOINT_EVERY = 256;

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    dir: { type: 'string' },
    entries: { type: 'string', default: '100000' },
    tail: { type: 'string', default: '100' },
  },
});
const dir = values.dir;
if (!dir) throw new Error('--dir is required');

const setup: AuditSetup = {
  config: auditSchema.parse({
    path: join(dir, 'audit.db'),
    origin: ORIGIN,
    signingKey: `file:${join(dir, 'signing.key')}`,
    hmacKey: `file:${join(dir, 'hmac.key')}`,
  }),
  baseDir: dir,
};

function item(n: number): AppendItem {
  const r = {
    v: 1,
    type: 'decision',
    n,
    callId: `call-${n}`,
    principal: { id: `jwt:user-${n % 97}`, authMethod: 'jwt' },
    tool: `echo__tool_${n % 1000}`,
    session: `session-${Math.floor(n / 50)}`,
    time: 1_764_000_000_000 + n,
    decision: { effect: 'allow' },
  };
  return { leaf: Buffer.from(canonicalize(r)), meta: metaOfRecord(r)!, blobs: [] };
}

async function generate(): Promise<Record<string, unknown>> {
  mkdirSync(dir!, { recursive: true });
  const key = generateSignerKey(ORIGIN);
  writeFileSync(join(dir!, 'signing.key'), `${key}\n`, { mode: 0o600 });
  writeFileSync(join(dir!, 'hmac.key'), `${'k'.repeat(32)}\n`, { mode: 0o600 });
  const signer = parseSignerKey(key);
  const store = new SqliteAuditStore(setup.config.path);
  store.db.exec('PRAGMA synchronous = OFF');
  const entries = Number(values.entries);
  const storedRange = store.db.prepare('SELECT range FROM audit_head WHERE id = 1');
  for (let n = 0; n < entries; n += CHECKPOINT_EVERY) {
    const batch = Array.from({ length: Math.min(CHECKPOINT_EVERY, entries - n) }, (_, i) => item(n + i));
    const head = await store.append(batch);
    const note = signCheckpoint({ origin: ORIGIN, size: head.size, root: head.root }, signer);
    // The range as the head stores it: the writer stores the same text with its checkpoint.
    const { range } = storedRange.get() as { range: string };
    await store.addCheckpoint({ size: head.size, note, range });
  }
  const tail = Number(values.tail);
  for (let n = 0; n < tail; n += CHECKPOINT_EVERY)
    await store.append(
      Array.from({ length: Math.min(CHECKPOINT_EVERY, tail - n) }, (_, i) => item(entries + n + i)),
    );
  await store.close();
  return { entries: entries + tail, checkpoints: Math.ceil(entries / CHECKPOINT_EVERY) };
}

/** The writer's start-up, as the gateway opens it; how many leaves it read is counted on the store. */
async function start(): Promise<Record<string, unknown>> {
  const opened = await openAudit(setup, silentLogger);
  const head = await opened.log.store.head();
  opened.log.stopTimer();
  await opened.log.store.close();
  return { entries: head.size };
}

async function verify(): Promise<Record<string, unknown>> {
  const store = await openAuditStore(setup, { readOnly: true });
  const { auditSigner } = await import('../src/audit/open.ts');
  const result = await verifyLog(store, auditSigner(setup, silentLogger));
  await store.close();
  if (!result.ok) throw new Error(`verify failed: ${JSON.stringify(result)}`);
  return { entries: result.size, checkpoints: result.checkpoints };
}

const steps: Record<string, () => Promise<Record<string, unknown>>> = { generate, start, verify };
const step = steps[positionals[0] ?? ''];
if (!step) throw new Error('usage: scale-audit.ts generate|start|verify --dir DIR');
const t0 = performance.now();
const figures = await step();
process.stdout.write(
  `${JSON.stringify({
    step: positionals[0],
    ...figures,
    ms: Math.round(performance.now() - t0),
    maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
  })}\n`,
);
