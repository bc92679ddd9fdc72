import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { Authenticator, type TrustedIssuer } from '../../src/identity/authenticator.ts';
import { AuthError } from '../../src/identity/errors.ts';
import { KeyCache } from '../../src/identity/key-cache.ts';
import { silentLogger } from '../../src/observability/log.ts';

const ISS = 'https://idp.test';
const AUD = 'https://gateway.test/mcp';
const T0 = 1_800_000_000;

function ecKey(kid: string) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { kid, privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' } };
}

/** A provider whose published keys, availability and fetch count the test controls. */
function provider(initial: ReturnType<typeof ecKey>[]) {
  const state = { keys: initial, up: true, fetches: 0, maxAge: undefined as number | undefined };
  const source = {
    async load() {
      state.fetches++;
      if (!state.up) throw new Error('provider down');
      return {
        jwks: { keys: state.keys.map((k) => k.jwk) },
        ...(state.maxAge ? { maxAge: state.maxAge } : {}),
      };
    },
  };
  return { state, source };
}

function setup(keys = [ecKey('k1')], extra: Partial<TrustedIssuer> = {}) {
  const clock = { ms: T0 * 1000 };
  const now = () => clock.ms;
  const p = provider(keys);
  const cache = new KeyCache(p.source, {
    maxAgeSeconds: 600,
    refetchCooldownSeconds: 30,
    allowSymmetric: false,
    now,
    log: silentLogger,
    label: ISS,
  });
  const auth = new Authenticator({
    resource: AUD,
    issuers: [
      {
        issuer: ISS,
        keys: cache,
        algorithms: ['ES256'],
        requiredScopes: [],
        workloadClaim: 'client_id',
        ...extra,
      },
    ],
    requiredScopes: [],
    toleranceSeconds: 30,
    now,
    log: silentLogger,
  });
  return { auth, clock, provider: p };
}

async function sign(
  key: { kid: string; privateKey: KeyObject },
  claims: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
) {
  return new SignJWT({
    iss: ISS,
    aud: AUD,
    sub: 'alice',
    client_id: 'app-1',
    iat: T0,
    exp: T0 + 300,
    ...claims,
  })
    .setProtectedHeader({ alg: 'ES256', kid: key.kid, ...header })
    .sign(key.privateKey);
}

async function reason(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof AuthError, String(err));
    return err.reason;
  }
  return 'accepted';
}

describe('bearer token verification', () => {
  it('accepts a valid token and builds the principal from workload and user', async () => {
    const k = ecKey('k1');
    const { auth } = setup([k]);
    const p = await auth.authenticate(`Bearer ${await sign(k, { scope: 'mcp:tools read' })}`);
    assert.equal(p.authMethod, 'jwt');
    assert.equal(p.user, 'alice');
    assert.equal(p.workload, 'app-1');
    assert.deepEqual(p.scopes, ['mcp:tools', 'read']);
    assert.match(p.id, /^p_[0-9a-f]{32}$/);
  });

  it('hands out principals whose claims cannot be edited, nested values included', async () => {
    const k = ecKey('k1');
    const { auth } = setup([k]);
    const p = await auth.authenticate(
      `Bearer ${await sign(k, { groups: ['team-7'], ext: { dept: 'ops' } })}`,
    );
    assert.throws(() => (p.claims.groups as string[]).push('admins'), TypeError);
    assert.throws(() => {
      (p.claims.ext as Record<string, string>).dept = 'finance';
    }, TypeError);
    assert.deepEqual(p.claims.groups, ['team-7']);
  });

  it('refuses every claim defect with its own reason', async () => {
    const k = ecKey('k1');
    const { auth } = setup([k]);
    const cases: [Record<string, unknown>, string][] = [
      [{ aud: 'https://other.example/mcp' }, 'wrong_audience'],
      [{ aud: [AUD.replace('gateway', 'gatewax')] }, 'wrong_audience'],
      [{ iss: 'https://idp.test/' }, 'issuer_unknown'],
      [{ exp: undefined }, 'missing_exp'],
      [{ exp: T0 - 31 }, 'expired'],
      [{ nbf: T0 + 31 }, 'not_yet_valid'],
      [{ iat: T0 + 31 }, 'iat_in_future'],
      [{ exp: 'later' }, 'missing_exp'],
      [{ sub: 42 }, 'bad_claims'],
      // No sub, no client and no jti: nothing a revocation could name.
      [{ sub: undefined, client_id: undefined }, 'bad_claims'],
    ];
    for (const [claims, why] of cases)
      assert.equal(await reason(auth.authenticate(`Bearer ${await sign(k, claims)}`)), why);
  });

  it('accepts a token a revocation can name by its id alone', async () => {
    const k = ecKey('k1');
    const { auth } = setup([k]);
    const p = await auth.authenticate(
      `Bearer ${await sign(k, { sub: undefined, client_id: undefined, jti: 'j-only' })}`,
    );
    assert.equal(p.tokenId, 'j-only');
  });

  it('accepts exp, nbf and iat within the configured clock tolerance', async () => {
    const k = ecKey('k1');
    const { auth } = setup([k]);
    const t = await sign(k, { exp: T0 - 29, nbf: T0 + 29, iat: T0 + 29 });
    assert.equal((await auth.authenticate(`Bearer ${t}`)).user, 'alice');
  });

  it('refuses tokens whose headers try to choose the key, need extensions or are huge', async () => {
    const k = ecKey('k1');
    const { auth } = setup([k]);
    const cases: [Record<string, unknown>, string][] = [
      [{ jku: 'https://evil.example/jwks' }, 'untrusted_key_header'],
      [{ x5u: 'https://evil.example/cert' }, 'untrusted_key_header'],
      [{ jwk: k.jwk }, 'untrusted_key_header'],
      [{ pad: 'x'.repeat(5000) }, 'header_too_large'],
      [{ kid: 'nope' }, 'unknown_kid'],
    ];
    for (const [header, why] of cases)
      assert.equal(await reason(auth.authenticate(`Bearer ${await sign(k, {}, header)}`)), why);
  });

  it('refuses a token that marks a header parameter critical', async () => {
    const k = ecKey('k1');
    const { auth } = setup([k]);
    const { sign: rawSign } = await import('node:crypto');
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const input = `${b64({ alg: 'ES256', kid: 'k1', crit: ['x-ext'], 'x-ext': 1 })}.${b64({ iss: ISS, aud: AUD, exp: T0 + 60 })}`;
    const sig = rawSign('sha256', Buffer.from(input), { key: k.privateKey, dsaEncoding: 'ieee-p1363' });
    assert.equal(
      await reason(auth.authenticate(`Bearer ${input}.${sig.toString('base64url')}`)),
      'crit_unsupported',
    );
  });

  it('refuses alg none, an algorithm outside the allowlist and HMAC signed with the public key', async () => {
    const k = ecKey('k1');
    const { auth } = setup([k]);
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const claims = b64({ iss: ISS, aud: AUD, exp: T0 + 60 });
    assert.equal(await reason(auth.authenticate(`Bearer ${b64({ alg: 'none' })}.${claims}.`)), 'bad_base64');
    assert.equal(
      await reason(auth.authenticate(`Bearer ${b64({ alg: 'none' })}.${claims}.AA`)),
      'alg_not_allowed',
    );
    const { createHmac } = await import('node:crypto');
    const header = b64({ alg: 'HS256', kid: 'k1' });
    const mac = createHmac('sha256', JSON.stringify(k.jwk)).update(`${header}.${claims}`).digest('base64url');
    assert.equal(await reason(auth.authenticate(`Bearer ${header}.${claims}.${mac}`)), 'alg_not_allowed');
  });

  it('distinguishes a missing credential, another scheme and a malformed bearer header', async () => {
    const { auth } = setup();
    assert.equal(await reason(auth.authenticate(undefined)), 'missing');
    assert.equal(await reason(auth.authenticate('Basic dXNlcjpwYXNz')), 'not_bearer');
    assert.equal(await reason(auth.authenticate('Bearer a b')), 'bad_request');
    assert.equal(await reason(auth.authenticate('Bearer a.b')), 'malformed');
  });

  it('answers a token without a required scope with insufficient_scope (403)', async () => {
    const k = ecKey('k1');
    const { auth } = setup([k], { requiredScopes: ['mcp:tools'] });
    const err = await auth
      .authenticate(`Bearer ${await sign(k, { scope: 'read' })}`)
      .catch((e: unknown) => e);
    assert.ok(err instanceof AuthError);
    assert.equal(err.code, 'ERR_AUTH_INSUFFICIENT_SCOPE');
    assert.equal(err.httpStatus, 403);
  });

  it('caches a verified token until it expires, then refuses it', async () => {
    const k = ecKey('k1');
    const { auth, clock, provider: p } = setup([k]);
    const t = `Bearer ${await sign(k)}`;
    const a = await auth.authenticate(t);
    assert.equal(await auth.authenticate(t), a);
    clock.ms = (T0 + 300 + 31) * 1000;
    assert.equal(await reason(auth.authenticate(t)), 'expired');
    assert.equal(p.state.fetches, 1);
  });
});

describe('issuer keys', () => {
  it('picks up a rotated key on an unknown kid, but refetches at most once per cooldown', async () => {
    const k1 = ecKey('k1');
    const k2 = ecKey('k2');
    const { auth, clock, provider: p } = setup([k1]);
    await auth.authenticate(`Bearer ${await sign(k1)}`);
    p.state.keys = [k1, k2];
    clock.ms += 31_000;
    assert.equal((await auth.authenticate(`Bearer ${await sign(k2)}`)).user, 'alice');
    assert.equal(p.state.fetches, 2);
    const forged = ecKey('k3');
    for (let i = 0; i < 5; i++)
      assert.equal(
        await reason(auth.authenticate(`Bearer ${await sign(forged, { jti: String(i) })}`)),
        'unknown_kid',
      );
    assert.equal(p.state.fetches, 2);
    clock.ms += 31_000;
    assert.equal(
      await reason(auth.authenticate(`Bearer ${await sign(forged, { jti: 'late' })}`)),
      'unknown_kid',
    );
    assert.equal(p.state.fetches, 3);
  });

  it('keeps cached keys working while the provider is down, within max-age only', async () => {
    const k1 = ecKey('k1');
    const { auth, clock, provider: p } = setup([k1]);
    await auth.authenticate(`Bearer ${await sign(k1)}`);
    p.state.up = false;
    clock.ms += 100_000;
    assert.equal(
      (await auth.authenticate(`Bearer ${await sign(k1, { exp: T0 + 3000, jti: 'a' })}`)).user,
      'alice',
    );
    assert.equal(await reason(auth.authenticate(`Bearer ${await sign(ecKey('k9'))}`)), 'unknown_kid');
    clock.ms = (T0 + 601) * 1000;
    assert.equal(
      await reason(auth.authenticate(`Bearer ${await sign(k1, { exp: T0 + 3000, jti: 'b' })}`)),
      'keys_unavailable',
    );
  });

  it('honours a shorter Cache-Control max-age from the provider', async () => {
    const k1 = ecKey('k1');
    const { auth, clock, provider: p } = setup([k1]);
    p.state.maxAge = 10;
    await auth.authenticate(`Bearer ${await sign(k1)}`);
    clock.ms += 11_000;
    await auth.authenticate(`Bearer ${await sign(k1, { jti: 'c' })}`);
    assert.equal(p.state.fetches, 2);
  });

  it('never uses a symmetric key published by an issuer', async () => {
    const clock = () => T0 * 1000;
    const cache = new KeyCache(
      {
        load: async () => ({
          jwks: { keys: [{ kty: 'oct', k: Buffer.alloc(32, 1).toString('base64url'), kid: 's' }] },
        }),
      },
      {
        maxAgeSeconds: 60,
        refetchCooldownSeconds: 0,
        allowSymmetric: false,
        now: clock,
        log: silentLogger,
        label: ISS,
      },
    );
    assert.deepEqual(await cache.current(), []);
  });
});
