import { openCheckpoint } from './checkpoint.ts';
import { AuditError } from './errors.ts';
import { leafHash, verifyInclusion } from './merkle.ts';
import type { Verifier } from './note.ts';

/** c2sp.org/tlog-proof: an offline receipt of one entry's inclusion under a signed checkpoint. */
const HEADER = 'c2sp.org/tlog-proof@v1';

export function formatProof(index: number, proof: readonly Buffer[], checkpointNote: string): string {
  return [HEADER, `index ${index}`, ...proof.map((h) => h.toString('base64')), '', checkpointNote].join('\n');
}

export interface ParsedProof {
  readonly index: number;
  readonly proof: Buffer[];
  readonly checkpoint: string;
}

export function parseProof(text: string): ParsedProof {
  const blank = text.indexOf('\n\n');
  if (blank < 0) throw new AuditError('ERR_AUDIT_PROOF_INVALID', 'malformed tlog-proof: no blank line');
  const lines = text.slice(0, blank).split('\n');
  if (lines[0] !== HEADER) throw new AuditError('ERR_AUDIT_PROOF_INVALID', 'not a c2sp.org/tlog-proof@v1');
  let i = 1;
  if (lines[i]?.startsWith('extra ')) i++;
  const m = /^index (0|[1-9][0-9]*)$/.exec(lines[i] ?? '');
  if (!m) throw new AuditError('ERR_AUDIT_PROOF_INVALID', 'malformed tlog-proof: index line');
  const proof = lines.slice(i + 1).map((l) => {
    const h = Buffer.from(l, 'base64');
    if (h.length !== 32 || h.toString('base64') !== l)
      throw new AuditError('ERR_AUDIT_PROOF_INVALID', 'malformed proof hash');
    return h;
  });
  return { index: Number(m[1]), proof, checkpoint: text.slice(blank + 2) };
}

/** Checks a receipt for `entry` without the database: signature, origin and inclusion. */
export function verifyReceipt(
  entry: Buffer,
  text: string,
  verifier: Verifier,
): { index: number; size: number } {
  const p = parseProof(text);
  const c = openCheckpoint(p.checkpoint, verifier);
  if (!verifyInclusion(p.index, c.size, leafHash(entry), p.proof, c.root)) {
    throw new AuditError(
      'ERR_AUDIT_PROOF_INVALID',
      `entry ${p.index} is not included in checkpoint ${c.size}`,
    );
  }
  return { index: p.index, size: c.size };
}
