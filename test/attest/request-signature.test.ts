import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { FlattenedSign } from 'jose';
import type { RegisteredKey } from '../../src/attest/config.ts';
import { REQUEST_TYP } from '../../src/attest/detached.ts';
import { RequestSignatures, requestPayload, SIGNATURE_META_KEY } from '../../src/attest/request-signature.ts';
import { PortcullisError } from '../../src/errors.ts';
import type { Principal } from '../../src/identity/principal.ts';
import { openRecordStore } from '../../src/state/open.ts';
import type { RecordStore } from '../../src/state/records.ts';
import { REDIS_URL } from '../helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'pc-reqsig-'));
const run = randomBytes(4).toString('hex');
const REDIS_PREFIX = `test:reqsig:${run}:`;
const stores: RecordStore[] = [];
const sqlite = (): RecordStore => {
  const s = openRecordStore({ store: 'sqlite', path: join(dir, 'state.db') }, dir);
  stores.push(s);
  return s;
};
after(async () => {
  for (const s of stores) await s.close();
  const r = new Redis(REDIS_URL);
  const keys = await r.keys(`${REDIS_PREFIX}*`);
  if (keys.length > 0) await r.del(...keys);
  r.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

const NOW = 1_764_780_000_000;
const SKEW = 300_000;
const ed25519 = () => generateKeyPairSync('ed25519');
const jwkOf = (k: KeyObject) => k.export({ format: 'jwk' }) as Record<string, unknown>;

const caller = (claims: Record<string, unknown> = {}, user = 'dana'): Principal => ({
  id: `p_${user}`,
  authMethod: 'gateway-token',
  user,
  scopes: [],
  claims,
});

const PARAMS = { name: 'pay__transfer', arguments: { to: 'bob', cents: 1000 } };

/** A request signed as a client would sign it, with jose. */
async function signed(
  key: KeyObject,
  opts: { alg?: string; kid?: string; time?: number; nonce?: string; params?: Record<string, unknown> } = {},
) {
  const nonce = opts.nonce ?? randomBytes(16).toString('base64url');
  const time = opts.time ?? NOW;
  const params = opts.params ?? PARAMS;
  const jws = await new FlattenedSign(requestPayload('tools/call', params, nonce, time))
    .setProtectedHeader({
      alg: opts.alg ?? 'EdDSA',
      typ: REQUEST_TYP,
      b64: false,
      crit: ['b64'],
      ...(opts.kid ? { kid: opts.kid } : {}),
    })
    .sign(key);
  const sig = { jws: `${jws.protected}..${jws.signature}`, nonce, time };
  return { method: 'tools/call', params: { ...PARAMS, _meta: { [SIGNATURE_META_KEY]: sig } } };
}

function verifier(nonces: RecordStore, registered: RegisteredKey[] = [], now = () => NOW) {
  return new RequestSignatures({ registered, nonces, now, maxSkewMs: SKEW });
}

const refusedWith = (code: string) => (err: unknown) => {
  assert.ok(err instanceof PortcullisError, String(err));
  assert.equal(err.code, code);
  return true;
};

describe('caller-signed requests', () => {
  it('treats a request without a signature as unsigned, not as refused', async () => {
    assert.equal(await verifier(sqlite()).check({ method: 'tools/call', params: PARAMS }, caller()), false);
  });

  it("accepts a signature by the token's cnf key", async () => {
    const { privateKey, publicKey } = ed25519();
    const req = await signed(privateKey);
    assert.equal(await verifier(sqlite()).check(req, caller({ cnf: { jwk: jwkOf(publicKey) } })), true);
  });

  it('accepts a signature by a key config registers for the caller (ES256), and only for that caller', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const registered = [{ user: 'dana', jwk: { ...jwkOf(publicKey), kid: 'dana-1' } } as RegisteredKey];
    const v = verifier(sqlite(), registered);
    assert.equal(await v.check(await signed(privateKey, { alg: 'ES256', kid: 'dana-1' }), caller()), true);
    await assert.rejects(
      v.check(await signed(privateKey, { alg: 'ES256' }), caller({}, 'eve')),
      refusedWith('ERR_REQUEST_SIGNATURE_INVALID'),
    );
  });

  it('refuses a signature by a key not bound to the caller', async () => {
    const bound = ed25519();
    const req = await signed(ed25519().privateKey);
    await assert.rejects(
      verifier(sqlite()).check(req, caller({ cnf: { jwk: jwkOf(bound.publicKey) } })),
      refusedWith('ERR_REQUEST_SIGNATURE_INVALID'),
    );
  });

  it('refuses a signed request whose params changed by one byte', async () => {
    const { privateKey, publicKey } = ed25519();
    const req = await signed(privateKey);
    const changed = { ...req, params: { ...req.params, arguments: { to: 'bob', cents: 10000 } } };
    await assert.rejects(
      verifier(sqlite()).check(changed, caller({ cnf: { jwk: jwkOf(publicKey) } })),
      refusedWith('ERR_REQUEST_SIGNATURE_INVALID'),
    );
  });

  it('ignores a cnf key that carries its private part, and refuses a malformed signature object', async () => {
    const { privateKey } = ed25519();
    const leaked = privateKey.export({ format: 'jwk' });
    await assert.rejects(
      verifier(sqlite()).check(await signed(privateKey), caller({ cnf: { jwk: leaked } })),
      refusedWith('ERR_REQUEST_SIGNATURE_INVALID'),
    );
    const malformed = { method: 'tools/call', params: { ...PARAMS, _meta: { [SIGNATURE_META_KEY]: 'abc' } } };
    await assert.rejects(
      verifier(sqlite()).check(malformed, caller()),
      refusedWith('ERR_REQUEST_SIGNATURE_INVALID'),
    );
  });

  it('refuses a signature whose time is outside the skew, either way', async () => {
    const { privateKey, publicKey } = ed25519();
    const p = caller({ cnf: { jwk: jwkOf(publicKey) } });
    for (const time of [NOW - SKEW - 1, NOW + SKEW + 1]) {
      await assert.rejects(
        verifier(sqlite()).check(await signed(privateKey, { time }), p),
        refusedWith('ERR_REQUEST_SIGNATURE_STALE'),
      );
    }
  });

  it('refuses a replayed nonce, also at another replica sharing the state store (Redis)', async () => {
    const { privateKey, publicKey } = ed25519();
    const p = caller({ cnf: { jwk: jwkOf(publicKey) } });
    const shared = () => {
      const s = openRecordStore({ store: 'redis', url: REDIS_URL, prefix: REDIS_PREFIX }, dir);
      stores.push(s);
      return s;
    };
    const req = await signed(privateKey);
    assert.equal(await verifier(shared()).check(req, p), true);
    await assert.rejects(verifier(shared()).check(req, p), refusedWith('ERR_REQUEST_SIGNATURE_REPLAYED'));
  });

  it('fails closed when the nonce store cannot answer', async () => {
    const { privateKey, publicKey } = ed25519();
    const down = openRecordStore({ store: 'redis', url: 'redis://127.0.0.1:1', prefix: REDIS_PREFIX }, dir);
    stores.push(down);
    await assert.rejects(
      verifier(down).check(await signed(privateKey), caller({ cnf: { jwk: jwkOf(publicKey) } })),
      refusedWith('ERR_STATE_UNAVAILABLE'),
    );
  });
});
