import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AttestationKeys, CurrentSigner, SIGNER_GRACE_MS, SIGNER_REFRESH_MS } from '../../src/attest/keys.ts';
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

function logged() {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: createLogger('info', (l) => void lines.push(JSON.parse(l))) };
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

  it('logs a change of key with the previous one', () => {
    const w = world();
    const { log, lines } = logged();
    const signer = new CurrentSigner(w.keys, w.now, log);
    const old = signer.current().kid;
    const { kid } = w.keys.rotate();
    w.advance(SIGNER_REFRESH_MS);
    signer.current();
    const line = lines.find((l) => l.msg === 'result-signing key changed');
    assert.deepEqual([line?.kid, line?.previous], [kid, old]);
  });

  for (const [what, breakIt] of [
    ['removed', (dir: string) => rmSync(dir, { recursive: true })],
    [
      'emptied (a volume not mounted)',
      (dir: string) => {
        for (const f of readdirSync(dir)) rmSync(join(dir, f));
      },
    ],
    [
      'holding a key file that does not parse',
      (dir: string) => writeFileSync(join(dir, 'half-copied.json'), '{'),
    ],
  ] as const) {
    it(`keeps the key it has for a grace period when the directory is ${what}, never makes one, then withholds results`, () => {
      const w = world();
      const { log, lines } = logged();
      const signer = new CurrentSigner(w.keys, w.now, log);
      const old = signer.current().kid;
      breakIt(w.dir);
      const before = existsSync(w.dir) ? readdirSync(w.dir).sort() : undefined;
      w.advance(SIGNER_REFRESH_MS);
      assert.equal(signer.current().kid, old, 'inside the grace period');
      assert.ok(lines.some((l) => String(l.msg).startsWith('result-signing keys cannot be read')));
      w.advance(SIGNER_GRACE_MS - SIGNER_REFRESH_MS);
      assert.throws(() => signer.current(), { code: 'ERR_ATTESTATION_FAILED' });
      assert.throws(() => signer.current(), { code: 'ERR_ATTESTATION_FAILED' }, 'every call looks again');
      assert.deepEqual(existsSync(w.dir) ? readdirSync(w.dir).sort() : undefined, before, 'no key made');
    });
  }

  it('signs again once a look reads a key', () => {
    const w = world();
    const signer = new CurrentSigner(w.keys, w.now, silentLogger);
    const bad = join(w.dir, 'half-copied.json');
    writeFileSync(bad, '{');
    w.advance(SIGNER_GRACE_MS);
    assert.throws(() => signer.current(), { code: 'ERR_ATTESTATION_FAILED' });
    rmSync(bad);
    assert.equal(signer.current().kid, w.keys.signer().kid);
  });

  it('leaves one active key when two rotations run at once: the later one', () => {
    const w = world();
    w.keys.signer();
    const a = new AttestationKeys(w.dir, w.now);
    const b = new AttestationKeys(w.dir, () => w.now() + 1);
    const ra = a.rotate();
    const rb = b.rotate();
    assert.equal(w.keys.currentSigner().kid, rb.kid);
    assert.ok(rb.retired.includes(ra.kid));
  });
});
