import {
  createHash,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  randomBytes,
  sign,
  verify,
} from 'node:crypto';
import { AuditError } from './errors.ts';

/** c2sp.org/signed-note with Ed25519 keys, in the Go `note` key string formats. */

const ED25519 = 0x01;
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const NAME = /^[^\s+]+$/;

export interface Verifier {
  readonly name: string;
  readonly keyId: Buffer;
  readonly publicKey: KeyObject;
  /** `name+hex(keyid)+base64(0x01 ‖ public key)` */
  readonly verifierKey: string;
}

export interface Signer extends Verifier {
  readonly privateKey: KeyObject;
}

export function keyId(name: string, type: number, publicKey: Uint8Array): Buffer {
  return createHash('sha256')
    .update(`${name}\n`)
    .update(Buffer.of(type))
    .update(publicKey)
    .digest()
    .subarray(0, 4);
}

function verifierFrom(name: string, pub: Buffer): Verifier {
  if (!NAME.test(name))
    throw new AuditError('ERR_AUDIT_KEY_INVALID', 'key name must have no spaces and no "+"');
  const id = keyId(name, ED25519, pub);
  return {
    name,
    keyId: id,
    publicKey: createPublicKey({ key: Buffer.concat([SPKI_PREFIX, pub]), format: 'der', type: 'spki' }),
    verifierKey: `${name}+${id.toString('hex')}+${Buffer.concat([Buffer.of(ED25519), pub]).toString('base64')}`,
  };
}

/** A new signer key string: `PRIVATE+KEY+name+hex(keyid)+base64(0x01 ‖ seed)`. */
export function generateSignerKey(name: string, random: (n: number) => Buffer = randomBytes): string {
  const seed = random(32);
  const v = verifierFrom(name, publicFromSeed(seed));
  return `PRIVATE+KEY+${name}+${v.keyId.toString('hex')}+${Buffer.concat([Buffer.of(ED25519), seed]).toString('base64')}`;
}

function publicFromSeed(seed: Buffer): Buffer {
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  return createPublicKey(priv).export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
}

/** Splits at the first `n - 1` plus signs: base64 key material may itself contain '+'. */
function splitKey(key: string, n: number): string[] {
  const parts = key.trim().split('+');
  return parts.length < n ? parts : [...parts.slice(0, n - 1), parts.slice(n - 1).join('+')];
}

export function parseSignerKey(skey: string): Signer {
  const parts = splitKey(skey, 5);
  const key = Buffer.from(parts[4] ?? '', 'base64');
  if (
    parts.length !== 5 ||
    parts[0] !== 'PRIVATE' ||
    parts[1] !== 'KEY' ||
    key.length !== 33 ||
    key[0] !== ED25519
  ) {
    throw new AuditError('ERR_AUDIT_KEY_INVALID', 'not an Ed25519 note signer key (PRIVATE+KEY+name+id+key)');
  }
  const seed = key.subarray(1);
  const v = verifierFrom(parts[2]!, publicFromSeed(seed));
  if (v.keyId.toString('hex') !== parts[3])
    throw new AuditError('ERR_AUDIT_KEY_INVALID', 'signer key id mismatch');
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  return { ...v, privateKey };
}

export function parseVerifierKey(vkey: string): Verifier {
  const parts = splitKey(vkey, 3);
  const key = Buffer.from(parts[2] ?? '', 'base64');
  if (parts.length !== 3 || key.length !== 33 || key[0] !== ED25519) {
    throw new AuditError('ERR_AUDIT_KEY_INVALID', 'not an Ed25519 verifier key (name+id+key)');
  }
  const v = verifierFrom(parts[0]!, key.subarray(1));
  if (v.keyId.toString('hex') !== parts[1])
    throw new AuditError('ERR_AUDIT_KEY_INVALID', 'verifier key id mismatch');
  return v;
}

function checkText(text: string): void {
  if (!text.endsWith('\n'))
    throw new AuditError('ERR_AUDIT_NOTE_INVALID', 'note text must end with a newline');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the spec forbids exactly these
  if (/[\u0000-\u0009\u000b-\u001f\u007f]/.test(text)) {
    throw new AuditError('ERR_AUDIT_NOTE_INVALID', 'note text has control characters');
  }
}

export function signNote(text: string, signer: Signer): string {
  checkText(text);
  const sig = sign(null, Buffer.from(text, 'utf8'), signer.privateKey);
  return `${text}\n— ${signer.name} ${Buffer.concat([signer.keyId, sig]).toString('base64')}\n`;
}

export interface OpenedNote {
  readonly text: string;
  /** Names of the known keys whose signatures verified. */
  readonly verifiedBy: readonly string[];
}

/** Splits and checks a note; unknown keys are ignored, a bad known signature rejects it. */
export function openNote(note: string, verifiers: readonly Verifier[]): OpenedNote {
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) throw new AuditError('ERR_AUDIT_NOTE_INVALID', 'malformed note');
  const text = note.slice(0, split + 1);
  checkText(text);
  const lines = note.slice(split + 2, -1).split('\n');
  const verifiedBy: string[] = [];
  for (const line of lines) {
    const m = /^— (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m) throw new AuditError('ERR_AUDIT_NOTE_INVALID', 'malformed signature line');
    const raw = Buffer.from(m[2]!, 'base64');
    const v = verifiers.find((k) => k.name === m[1] && raw.length >= 4 && k.keyId.equals(raw.subarray(0, 4)));
    if (!v) continue;
    if (!verify(null, Buffer.from(text, 'utf8'), v.publicKey, raw.subarray(4))) {
      throw new AuditError('ERR_AUDIT_SIGNATURE_INVALID', `bad signature from ${v.name}`);
    }
    verifiedBy.push(v.name);
  }
  if (verifiedBy.length === 0)
    throw new AuditError('ERR_AUDIT_SIGNATURE_INVALID', 'no signature from a known key');
  return { text, verifiedBy };
}
