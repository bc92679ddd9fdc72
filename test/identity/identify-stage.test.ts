import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { validateConfig } from '../../src/config/load.ts';
import { mintGatewayToken } from '../../src/identity/gateway-tokens.ts';
import type { Principal } from '../../src/identity/principal.ts';
import { createIdentity, gatewayIssuer, gatewayKeyDir } from '../../src/identity/service.ts';
import { silentLogger } from '../../src/observability/log.ts';
import type { CallContext } from '../../src/pipeline/context.ts';
import { createPipeline } from '../../src/pipeline/runner.ts';
import { identifyStage } from '../../src/pipeline/stages/identify.ts';
import type { RevocationStore } from '../../src/state/revocations.ts';
import { SqliteRevocationStore } from '../../src/state/sqlite.ts';
import { probeUpstream, testCallContext } from '../helpers.ts';

const T0 = 1_800_000_000;
const dir = mkdtempSync(join(tmpdir(), 'portcullis-identify-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const config = validateConfig({
  identity: {
    mode: 'token',
    resource: 'https://gateway.test/mcp',
    gatewayTokens: { keyDir: join(dir, 'keys') },
  },
  state: { store: 'sqlite', path: join(dir, 'state.db') },
  upstreams: { probe: probeUpstream() },
});

async function world(store: RevocationStore = new SqliteRevocationStore(join(dir, 'state.db'))) {
  const clock = { ms: T0 * 1000 };
  const identity = createIdentity(config, dir, {
    log: silentLogger,
    now: () => clock.ms,
    revocations: store,
  });
  if (config.identity.mode !== 'token') throw new Error('unreachable');
  const minted = await mintGatewayToken(gatewayKeyDir(config.identity, dir), {
    issuer: gatewayIssuer(config.identity),
    audience: config.identity.resource,
    sub: 'agent-1',
    tools: ['probe__echo'],
    ttlSeconds: 600,
    maxTtlSeconds: 3600,
    reason: 'test',
    nowSeconds: T0,
    newId: () => `jti-${Math.random()}`,
  });
  const principal = await identity.authenticate(`Bearer ${minted.token}`);
  return { identity, principal, clock, store, jti: minted.jti };
}

function call(principal: Principal, method: string, params: Record<string, unknown> = {}): CallContext {
  return testCallContext({ era: 'modern', principal, request: { jsonrpc: '2.0', id: 1, method, params } });
}

/** identify, a hold (where policy or approval would wait), identify again, then forward. */
function pipelineWithHold(identity: Awaited<ReturnType<typeof world>>['identity'], hold: Promise<void>) {
  const forwarded: string[] = [];
  const pipeline = createPipeline(
    [
      identifyStage(identity, 'identify'),
      { name: 'hold', run: () => hold },
      identifyStage(identity, 'reidentify'),
      {
        name: 'forward',
        run(ctx: CallContext) {
          forwarded.push(ctx.request.method);
          ctx.response = { jsonrpc: '2.0', id: ctx.request.id, result: {} };
        },
      },
    ],
    [],
    silentLogger,
  );
  return { pipeline, forwarded };
}

describe('the identify stage', () => {
  it('checks revocation at the start of every call and again before forwarding', async () => {
    const store = new SqliteRevocationStore(join(dir, 'state.db'));
    let lookups = 0;
    const counting: RevocationStore = Object.assign(Object.create(store) as RevocationStore, {
      find: (subject: Parameters<RevocationStore['find']>[0]) => {
        lookups++;
        return store.find(subject);
      },
    });
    const w = await world(counting);
    const { pipeline, forwarded } = pipelineWithHold(w.identity, Promise.resolve());
    await pipeline.run(call(w.principal, 'tools/call', { name: 'probe__echo' }));
    assert.equal(lookups, 2, 'at identify and before forwarding');
    await pipeline.run(call(w.principal, 'tools/call', { name: 'probe__echo' }));
    assert.equal(lookups, 4, 'again for the next call: no check is reused');
    await w.store.revoke({ kind: 'jti', value: w.jti, revokedAt: T0 * 1000 });
    const revoked = call(w.principal, 'tools/call', { name: 'probe__echo' });
    await pipeline.run(revoked);
    assert.equal(revoked.error?.code, 'ERR_TOKEN_REVOKED');
    assert.deepEqual(forwarded, ['tools/call', 'tools/call']);
  });

  it('lets a call with a live token through', async () => {
    const w = await world();
    const { pipeline, forwarded } = pipelineWithHold(w.identity, Promise.resolve());
    const ctx = call(w.principal, 'tools/call', { name: 'probe__echo' });
    await pipeline.run(ctx);
    assert.equal(ctx.error, undefined);
    assert.deepEqual(forwarded, ['tools/call']);
  });

  it('stops a call in flight when its token is revoked before it is forwarded', async () => {
    const w = await world();
    let release!: () => void;
    const { pipeline, forwarded } = pipelineWithHold(w.identity, new Promise<void>((r) => (release = r)));
    const ctx = call(w.principal, 'tools/call', { name: 'probe__echo' });
    const running = pipeline.run(ctx);
    await w.store.revoke({ kind: 'jti', value: w.jti, revokedAt: T0 * 1000 });
    release();
    await running;
    assert.equal(ctx.error?.code, 'ERR_TOKEN_REVOKED');
    assert.deepEqual(forwarded, []);
  });

  it('stops a call whose token expires while it waits', async () => {
    const w = await world();
    let release!: () => void;
    const { pipeline, forwarded } = pipelineWithHold(w.identity, new Promise<void>((r) => (release = r)));
    const ctx = call(w.principal, 'tools/call', { name: 'probe__echo' });
    const running = pipeline.run(ctx);
    w.clock.ms = (T0 + 600 + 31) * 1000;
    release();
    await running;
    assert.equal(ctx.error?.code, 'ERR_TOKEN_EXPIRED');
    assert.deepEqual(forwarded, []);
  });

  it('refuses revocation by user and by workload too', async () => {
    const w = await world();
    await w.store.revoke({ kind: 'sub', value: 'agent-1', revokedAt: 1 });
    const ctx = call(w.principal, 'tools/list');
    await pipelineWithHold(w.identity, Promise.resolve()).pipeline.run(ctx);
    assert.equal(ctx.error?.code, 'ERR_TOKEN_REVOKED');
  });

  it('denies a tool outside the token allowed_tools exactly like an unknown tool', async () => {
    const fresh = new SqliteRevocationStore(join(dir, 'fresh.db'));
    const w = await world(fresh);
    const ctx = call(w.principal, 'tools/call', { name: 'probe__env' });
    const { pipeline, forwarded } = pipelineWithHold(w.identity, Promise.resolve());
    await pipeline.run(ctx);
    assert.equal(ctx.error?.code, 'ERR_UNKNOWN_TARGET');
    assert.deepEqual(ctx.response?.error, { code: -32602, message: 'Unknown tool' });
    assert.deepEqual(forwarded, []);
  });

  it('fails closed when the revocation store cannot answer', async () => {
    const broken: RevocationStore = {
      revoke: async () => {},
      find: async () => {
        throw new Error('store down');
      },
      sync: async () => {
        throw new Error('store down');
      },
      list: async () => [],
      close: async () => {},
    };
    const w = await world(broken);
    const ctx = call(w.principal, 'tools/list');
    await pipelineWithHold(w.identity, Promise.resolve()).pipeline.run(ctx);
    assert.equal(ctx.error?.code, 'ERR_STATE_UNAVAILABLE');
  });
});
