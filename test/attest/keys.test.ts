import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AttestationKeys, CurrentSigner, SIGNER_REFRESH_MS } from '../../src/attest/keys.ts';
import { createLogger, silentLogger } from '../../src/observability/log.ts';

const DAY = 86_400_000;

function world() {
  let t = 1_764_780_000_000;
  const dir = mkdtempSync(join(tmpdir(), 'pc-attest-keys-'));
  const now = () => t;
  return {
    dir,
    now,
    keys: new AttestationKeys(dir, now),
    advance: (ms: number) => {
      t += ms;
    },
  };
}

const kids = (keys: AttestationKeys) => keys.jwks().keys.map((k) => k.kid as string);

describe('result-signing key rotation', () => {
  it('signs with the new key and keeps every earlier one published, however long ago it retired', () => {
    const w = world();
    const first = w.keys.signer().kid;
    const r1 = w.keys.rotate();
    assert.deepEqual(r1.retired, [first]);
    assert.equal(w.keys.signer().kid, r1.kid);
    w.advance(400 * DAY);
    const r2 = w.keys.rotate();
    assert.deepEqual(r2.retired, [r1.kid]);
    assert.equal(w.keys.signer().kid, r2.kid);
    assert.deepEqual(kids(w.keys).sort(), [first, r1.kid, r2.kid].sort());
    assert.equal(readdirSync(w.dir).length, 3, 'no key file deleted');
  });

  it('reaches a running signer at its next look, within SIGNER_REFRESH_MS, and not before', () => {
    const w = world();
    const signer = new CurrentSigner(w.keys, w.now, silentLogger);
    const old = signer.current().kid;
    const { kid } = new AttestationKeys(w.dir, w.now).rotate();
    w.advance(SIGNER_REFRESH_MS - 1);
    assert.equal(signer.current().kid, old, 'still inside the interval');
    w.advance(1);
    assert.equal(signer.current().kid, kid);
  });

  it('looks again when the clock goes back', () => {
    const w = world();
    const signer = new CurrentSigner(w.keys, w.now, silentLogger);
    const { kid } = w.keys.rotate();
    w.advance(-1);
    assert.equal(signer.current().kid, kid);
  });

  it('keeps signing with the previous key, and says so, when the directory cannot be read', () => {
    const w = world();
    const lines: Record<string, unknown>[] = [];
    const log = createLogger('warn', (l) => void lines.push(JSON.parse(l)));
    const signer = new CurrentSigner(w.keys, w.now, log);
    const old = signer.current().kid;
    // A file where the directory was: no key can be read there, nor one created.
    rmSync(w.dir, { recursive: true });
    writeFileSync(w.dir, 'not a directory');
    w.advance(SIGNER_REFRESH_MS);
    assert.equal(signer.current().kid, old);
    const line = lines.find((l) => String(l.msg).startsWith('result-signing keys not read again'));
    assert.equal(line?.kid, old);
  });
});
