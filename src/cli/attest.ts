import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { JSONWebKeySet } from 'jose';
import { AttestationKeys } from '../attest/keys.ts';
import { checkInLog } from '../attest/log-check.ts';
import { verifyAttestation } from '../attest/verify.ts';
import { auditSetup } from '../audit/open.ts';
import { type LoadedConfig, loadConfigFile } from '../config/load.ts';
import { isLoopbackHost } from '../config/loopback.ts';
import { PortcullisError, UsageError } from '../errors.ts';
import { isObject } from '../jsonrpc.ts';
import { AS_OPTION, adminAct, adminActor, recordAdminAct } from './admin-audit.ts';
import { parseCommandArgs, required } from './args.ts';
import { quiet, withStore } from './audit-store.ts';
import { USAGE } from './usage.ts';

const JWKS_TIMEOUT_MS = 10_000;

export async function attestCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'verify') return verify(rest);
  if (sub === 'rotate') return rotate(rest);
  throw new UsageError(`attest: unknown or missing command\n${USAGE.attest}`);
}

/**
 * A new result-signing key in the config's `attest.keyDir`: running gateways
 * sign with it within a minute; the previous key stays published, so what it
 * signed still verifies.
 */
async function rotate(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(args, { config: { type: 'string', short: 'c' }, ...AS_OPTION });
  const loaded = loadConfigFile(required(values.config, '--config'));
  const actor = adminActor(loaded, values.as);
  const result = new AttestationKeys(resolve(loaded.baseDir, loaded.config.attest.keyDir)).rotate();
  process.stdout.write(`${JSON.stringify({ event: 'attest-keys-rotated', ...result })}\n`);
  await recordAdminAct(
    loaded,
    adminAct('attest-keys-rotated', actor, result, { what: `result-signing key ${result.kid} is in use` }),
  );
  return 0;
}

/**
 * Checks a saved response against the key set (`--jwks`, or the key
 * directory of `--config`); with `--config`, also that the audit log holds
 * the call with this very result. Exit 0 when all holds, 1 with a code when not.
 */
async function verify(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    args,
    { jwks: { type: 'string' }, config: { type: 'string' } },
    true,
  );
  const [file, ...extra] = positionals;
  if (!file || extra.length > 0) throw new UsageError(`one FILE is required\n${USAGE['attest verify']}`);
  if (!values.jwks && !values.config) throw new UsageError('--jwks or --config is required');
  const loaded = values.config ? loadConfigFile(values.config) : undefined;
  const jwks = values.jwks ? await readJwks(values.jwks) : keysOf(loaded!);
  const doc = readJson(file);
  const verified = await verifyAttestation(doc, jwks);
  const logged = loaded
    ? await withStore(auditSetup(loaded, quiet), (store) => checkInLog(store, verified))
    : undefined;
  const { jws: _, ...claims } = verified;
  process.stdout.write(`${JSON.stringify({ ok: true, ...claims, ...(logged ? { logged } : {}) })}\n`);
  return 0;
}

const keysOf = (loaded: LoadedConfig): JSONWebKeySet =>
  new AttestationKeys(resolve(loaded.baseDir, loaded.config.attest.keyDir)).jwks() as JSONWebKeySet;

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new PortcullisError('ERR_ATTESTATION_MISSING', `${file} is not JSON`);
  }
}

/** A key set from a URL (http or https) or a file. */
async function readJwks(where: string): Promise<JSONWebKeySet> {
  let doc: unknown;
  if (/^https?:\/\//.test(where)) {
    refuseCleartext(where, where);
    const res = await fetch(where, { signal: AbortSignal.timeout(JWKS_TIMEOUT_MS) }).catch((err) => {
      throw new PortcullisError('ERR_FETCH_FAILED', `cannot fetch ${where}`, { cause: err });
    });
    // A redirect may not lead where the URL given could not.
    if (res.url) refuseCleartext(where, res.url);
    if (!res.ok) throw new PortcullisError('ERR_FETCH_FAILED', `${where}: HTTP ${res.status}`);
    doc = await res.json().catch(() => undefined);
  } else {
    doc = readJson(where);
  }
  if (!isObject(doc) || !Array.isArray(doc.keys))
    throw new PortcullisError('ERR_KEYS_UNAVAILABLE', `${where} is not a JWKS`);
  return doc as unknown as JSONWebKeySet;
}

/** Keys fetched in the clear could be anyone's: a forged result would then verify. */
function refuseCleartext(given: string, reached: string): void {
  const url = new URL(reached);
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname))
    throw new UsageError(`--jwks ${given}: plain http only to a loopback host; use https`);
}
