import { createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { AuditError } from './errors.ts';
import { keyId } from './note.ts';

/** c2sp.org/tlog-cosignature (Ed25519, type 0x04) and the c2sp.org/tlog-witness add-checkpoint call. */

const COSIGNATURE = 0x04;
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface WitnessKey {
  readonly name: string;
  readonly keyId: Buffer;
  readonly publicKey: KeyObject;
}

/** `name+hex(keyid)+base64(0x04 ‖ public key)` */
export function parseWitnessKey(vkey: string): WitnessKey {
  const parts = vkey.trim().split('+');
  const [name, id] = parts;
  const key = Buffer.from(parts.slice(2).join('+'), 'base64');
  if (!name || !id || key.length !== 33 || key[0] !== COSIGNATURE) {
    throw new AuditError(
      'ERR_AUDIT_KEY_INVALID',
      'not a tlog-cosignature verifier key (name+id+base64(0x04 ‖ key))',
    );
  }
  const pub = key.subarray(1);
  if (keyId(name, COSIGNATURE, pub).toString('hex') !== id) {
    throw new AuditError('ERR_AUDIT_KEY_INVALID', 'witness key id mismatch');
  }
  return {
    name,
    keyId: keyId(name, COSIGNATURE, pub),
    publicKey: createPublicKey({ key: Buffer.concat([SPKI_PREFIX, pub]), format: 'der', type: 'spki' }),
  };
}

export const witnessVerifierKey = (name: string, pub: Buffer): string =>
  `${name}+${keyId(name, COSIGNATURE, pub).toString('hex')}+${Buffer.concat([Buffer.of(COSIGNATURE), pub]).toString('base64')}`;

const signedMessage = (time: number, checkpointText: string): Buffer =>
  Buffer.from(`cosignature/v1\ntime ${time}\n${checkpointText}`, 'utf8');

/** A cosignature line as a witness writes it. */
export function cosign(
  name: string,
  pub: Buffer,
  privateKey: KeyObject,
  time: number,
  checkpointText: string,
): string {
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(BigInt(time));
  const sig = sign(null, signedMessage(time, checkpointText), privateKey);
  return `— ${name} ${Buffer.concat([keyId(name, COSIGNATURE, pub), ts, sig]).toString('base64')}`;
}

/** The cosignature line of `witness` among `lines` that verifies over the checkpoint text, or undefined. */
export function findCosignature(
  lines: readonly string[],
  witness: WitnessKey,
  checkpointText: string,
): string | undefined {
  for (const line of lines) {
    const m = /^— (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m || m[1] !== witness.name) continue;
    const raw = Buffer.from(m[2]!, 'base64');
    if (raw.length !== 4 + 8 + 64 || !raw.subarray(0, 4).equals(witness.keyId)) continue;
    const time = Number(raw.readBigUInt64BE(4));
    if (verify(null, signedMessage(time, checkpointText), witness.publicKey, raw.subarray(12))) return line;
  }
  return undefined;
}

export interface WitnessConfig {
  readonly url: string;
  readonly key: string;
}

export type PushResult =
  | { ok: true; cosignature: string }
  | { ok: false; knownSize?: number; status: number };

/** POST <url>/add-checkpoint with the consistency proof from the size the witness last saw. */
export async function addCheckpoint(
  witness: WitnessConfig,
  oldSize: number,
  proof: readonly Buffer[],
  note: string,
  checkpointText: string,
  timeoutMs = 5000,
): Promise<PushResult> {
  const body = [`old ${oldSize}`, ...proof.map((h) => h.toString('base64')), '', note].join('\n');
  const res = await fetch(
    new URL('add-checkpoint', witness.url.endsWith('/') ? witness.url : `${witness.url}/`),
    {
      method: 'POST',
      body,
      signal: AbortSignal.timeout(timeoutMs),
    },
  );
  const text = await res.text();
  if (res.status === 409) {
    const size = /^(0|[1-9][0-9]*)\s*$/.exec(text);
    return size ? { ok: false, status: 409, knownSize: Number(size[1]) } : { ok: false, status: 409 };
  }
  if (res.status !== 200) return { ok: false, status: res.status };
  const line = findCosignature(text.split('\n'), parseWitnessKey(witness.key), checkpointText);
  return line ? { ok: true, cosignature: line } : { ok: false, status: 200 };
}
