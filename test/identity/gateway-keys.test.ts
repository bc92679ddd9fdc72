import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { validateConfig } from '../../src/config/load.ts';
import type { AuthError } from '../../src/identity/errors.ts';
import { mintGatewayToken } from '../../src/identity/gateway-tokens.ts';
import { createIdentity, gatewayIssuer, gatewayKeyDir } from '../../src/identity/service.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { probeUpstream } from '../helpers.ts';

const T0 = 1_800_000_000;
const dir = mkdtempSync(join(tmpdir(), 'portcullis-gateway-keys-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const config = validateConfig({
  identity: {
    mode: 'token',
    resource: 'https://gateway.test/mcp',
    gatewayTokens: { keyDir: join(dir, 'keys'), maxTtlSeconds: 3600 },
  },
  state: { store: 'sqlite', path: join(dir, 'state.db') },
  upstreams: { probe: probeUpstream() },
});
if (config.identity.mode !== 'token') throw new Error('unreachable');
const identityConfig = config.identity;

const clock = { ms: T0 * 1000 };
const now = () => clock.ms;
const keys = gatewayKeyDir(identityConfig, dir, now);
const identity = createIdentity(config, dir, { log: silentLogger, now });

/** What someone holding a copy of the key file could mint, with any iat they like. */
async function mintWithKey(kid: string, iatSeconds: number, sub: string): Promise<string> {
  const stored = JSON.parse(readFileSync(join(keys.dir, `${kid}.json`), 'utf8')) as {
    privateJwk: Record<string, unknown>;
  };
  return new SignJWT({ allowed_tools: ['probe__echo'], reason: 'test' })
    .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt' })
    .setIssuer(gatewayIssuer(identityConfig))
    .setSubject(sub)
    .setAudience(identityConfig.resource)
    .setIssuedAt(iatSeconds)
    .setExpirationTime(iatSeconds + 600)
    .setJti(`jti-${sub}`)
    .sign(createPrivateKey({ key: stored.privateJwk as never, format: 'jwk' }));
}

const reasonOf = async (token: string): Promise<string | undefined> => {
  try {
    await identity.authenticate(`Bearer ${token}`);
    return undefined;
  } catch (err) {
    return (err as AuthError).reason;
  }
};

describe('gateway key retirement', () => {
  it('refuses a token from a retired key issued after its retirement, and keeps older ones working', async () => {
    const before = await mintGatewayToken(keys, {
      issuer: gatewayIssuer(identityConfig),
      audience: identityConfig.resource,
      sub: 'agent-before',
      tools: ['probe__echo'],
      ttlSeconds: 600,
      maxTtlSeconds: 3600,
      reason: 'test',
      nowSeconds: T0,
    });
    clock.ms += 60_000;
    const rotated = keys.rotate(3600);
    assert.deepEqual(rotated.retired, [before.kid]);
    clock.ms += 60_000;

    assert.equal(await reasonOf(before.token), undefined);
    const onTheDot = await mintWithKey(before.kid, T0 + 60, 'agent-on-the-dot');
    assert.equal(await reasonOf(onTheDot), undefined);
    const late = await mintWithKey(before.kid, T0 + 120, 'agent-late');
    assert.equal(await reasonOf(late), 'key_retired');
    const justAfter = await mintWithKey(before.kid, T0 + 61, 'agent-just-after');
    assert.equal(await reasonOf(justAfter), 'key_retired');
    const fresh = await mintWithKey(rotated.kid, T0 + 120, 'agent-new-key');
    assert.equal(await reasonOf(fresh), undefined);
  });

  it('answers a retired-key token with the generic invalid-token code', async () => {
    const active = keys.signingKey().kid;
    keys.rotate(3600);
    const late = await mintWithKey(active, Math.floor(clock.ms / 1000) + 1, 'agent-code');
    await assert.rejects(identity.authenticate(`Bearer ${late}`), {
      code: 'ERR_AUTH_INVALID',
      reason: 'key_retired',
    });
  });
});
