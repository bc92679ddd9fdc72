import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkpointText, openCheckpoint, signCheckpoint } from '../../src/audit/checkpoint.ts';
import {
  generateSignerKey,
  openNote,
  parseSignerKey,
  parseVerifierKey,
  signNote,
} from '../../src/audit/note.ts';

// The example keys and note of golang.org/x/mod/sumdb/note.
const SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const TEXT =
  "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const NOTE = `${TEXT}\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`;

describe('signed notes', () => {
  it('derives the standard verifier key from a signer key', () => {
    assert.equal(parseSignerKey(SKEY).verifierKey, VKEY);
    assert.equal(parseVerifierKey(VKEY).keyId.toString('hex'), 'c74f20a3');
  });

  it('signs exactly as the reference implementation does', () => {
    assert.equal(signNote(TEXT, parseSignerKey(SKEY)), NOTE);
    assert.deepEqual(openNote(NOTE, [parseVerifierKey(VKEY)]).verifiedBy, ['PeterNeumann']);
  });

  it('rejects a note whose text was changed', () => {
    assert.throws(() => openNote(NOTE.replace('cryptography', 'blockchain'), [parseVerifierKey(VKEY)]), {
      code: 'ERR_AUDIT_SIGNATURE_INVALID',
    });
  });

  it('rejects a note signed only by an unknown key', () => {
    const other = parseSignerKey(generateSignerKey('PeterNeumann'));
    assert.throws(() => openNote(signNote(TEXT, other), [parseVerifierKey(VKEY)]), {
      code: 'ERR_AUDIT_SIGNATURE_INVALID',
    });
  });

  it('refuses text with control characters or without a final newline', () => {
    const s = parseSignerKey(SKEY);
    assert.throws(() => signNote('a\tb\n', s), { code: 'ERR_AUDIT_NOTE_INVALID' });
    assert.throws(() => signNote('no newline', s), { code: 'ERR_AUDIT_NOTE_INVALID' });
  });

  it('round-trips a checkpoint and refuses another origin', () => {
    const s = parseSignerKey(generateSignerKey('example.com/log'));
    const c = { origin: 'example.com/log', size: 12, root: Buffer.alloc(32, 7) };
    const note = signCheckpoint(c, s);
    assert.ok(note.startsWith(checkpointText(c)));
    assert.deepEqual(openCheckpoint(note, s), c);
    assert.throws(() => openCheckpoint(note, s, 'other.example/log'), { code: 'ERR_AUDIT_NOTE_INVALID' });
  });
});
