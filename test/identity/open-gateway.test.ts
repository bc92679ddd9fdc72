import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config/load.ts';
import { AuthError } from '../../src/identity/errors.ts';
import { ANONYMOUS, type Principal } from '../../src/identity/principal.ts';
import { createIdentity } from '../../src/identity/service.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { probeUpstream } from '../helpers.ts';

const open = () =>
  createIdentity(validateConfig({ upstreams: { probe: probeUpstream() } }), '/tmp', { log: silentLogger });

const tokenHolder: Principal = Object.freeze({
  id: 'p_someone',
  authMethod: 'gateway-token',
  user: 'alice',
  tokenId: 'jti-1',
  scopes: [],
  expiresAt: 1,
  claims: {},
});

describe('an open gateway (identity.mode: none)', () => {
  it('identifies every caller as ANONYMOUS and rechecks ANONYMOUS as allowed', async () => {
    const identity = open();
    assert.equal(identity.mode, 'none');
    const principal = await identity.authenticate(undefined);
    assert.equal(principal, ANONYMOUS);
    await identity.recheck(principal);
    await identity.close();
  });

  it('refuses to recheck any principal other than ANONYMOUS, since it cannot check one', async () => {
    const identity = open();
    await assert.rejects(identity.recheck(tokenHolder), (err: unknown) => {
      assert.ok(err instanceof AuthError);
      assert.equal(err.code, 'ERR_AUTH_REQUIRED');
      assert.equal(err.reason, 'missing');
      return true;
    });
    await identity.close();
  });
});
