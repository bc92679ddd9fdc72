import { AuditError } from './errors.ts';
import { openNote, type Signer, signNote, type Verifier } from './note.ts';

/** c2sp.org/tlog-checkpoint: `origin\nsize\nbase64(root)\n`, signed as a note. */
export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly root: Buffer;
}

export const checkpointText = (c: Checkpoint): string =>
  `${c.origin}\n${c.size}\n${c.root.toString('base64')}\n`;

export const signCheckpoint = (c: Checkpoint, signer: Signer): string => signNote(checkpointText(c), signer);

export function parseCheckpointText(text: string): Checkpoint {
  const lines = text.split('\n');
  const [origin, size, root] = lines;
  const rootBytes = Buffer.from(root ?? '', 'base64');
  if (
    !origin ||
    !size ||
    !/^(0|[1-9][0-9]*)$/.test(size) ||
    rootBytes.length !== 32 ||
    rootBytes.toString('base64') !== root
  ) {
    throw new AuditError('ERR_AUDIT_NOTE_INVALID', 'malformed checkpoint');
  }
  const n = Number(size);
  if (!Number.isSafeInteger(n)) throw new AuditError('ERR_AUDIT_NOTE_INVALID', 'checkpoint size too large');
  return { origin, size: n, root: rootBytes };
}

/** Verifies the signature and that the origin is the one expected (the key's name by default). */
export function openCheckpoint(note: string, verifier: Verifier, origin = verifier.name): Checkpoint {
  const { text } = openNote(note, [verifier]);
  const c = parseCheckpointText(text);
  if (c.origin !== origin)
    throw new AuditError('ERR_AUDIT_NOTE_INVALID', `checkpoint origin ${c.origin} is not ${origin}`);
  return c;
}
