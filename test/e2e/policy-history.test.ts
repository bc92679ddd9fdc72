import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/client';
import type { CallContext } from '../../src/pipeline/context.ts';
import type { Stage } from '../../src/pipeline/runner.ts';
import { failsWith, httpClient, probeUpstream, startAuthTestGateway, textOf } from '../helpers.ts';

const POLICY = `
@id("all") permit(principal, action, resource);

@id("no-echo-after-sensitive-read")
forbid(principal, action == Action::"tools/call:probe__echo", resource)
when { context.session.sensitiveRead };
`;

const TOOLS = ['probe__echo', 'probe__secret_env'];

/** The decision and error code of every tools/call, as the audit stage sees them. */
const seen: { code: string | undefined; decision: CallContext['decision'] }[] = [];
const recorder: Stage = {
  name: 'test-recorder',
  run(ctx) {
    if (ctx.request.method === 'tools/call') seen.push({ code: ctx.error?.code, decision: ctx.decision });
  },
};

const refusedAsUnknown = (err: unknown) => {
  failsWith(-32602)(err);
  assert.equal(seen.at(-1)?.code, 'ERR_UNKNOWN_TARGET');
  assert.deepEqual(seen.at(-1)?.decision?.determiningPolicies, ['no-echo-after-sensitive-read']);
  return true;
};

describe('the exfiltration rule across sessions and eras, through the gateway over HTTP', () => {
  let gw: Awaited<ReturnType<typeof startAuthTestGateway>>;
  const clients: Client[] = [];
  const connect = async (sub: string, era: 'legacy' | 'modern') => {
    const { token } = await gw.token(sub, TOOLS);
    const client = await httpClient(gw.url, era, { authorization: `Bearer ${token}` });
    clients.push(client);
    return client;
  };
  const readSecret = (c: Client) => c.callTool({ name: 'probe__secret_env', arguments: {} });
  const send = (c: Client) => c.callTool({ name: 'probe__echo', arguments: { text: 'the secret' } });

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-history-'));
    writeFileSync(join(dir, 'p.cedar'), POLICY);
    gw = await startAuthTestGateway(
      {
        upstreams: { probe: probeUpstream() },
        policy: { files: [join(dir, 'p.cedar')], sensitive: [{ tool: 'probe__secret_env' }] },
      },
      dir,
    );
    (gw.running.gateway.pipeline.terminal as Stage[]).push(recorder);
  });
  after(async () => {
    for (const c of clients) await c.close();
    await gw?.running.close();
  });

  it('denies the send in legacy session B after the same caller read a secret in legacy session A', async () => {
    const a = await connect('alice', 'legacy');
    const b = await connect('alice', 'legacy');
    assert.match(textOf(await send(b)), /the secret/, 'allowed before any sensitive read');
    await readSecret(a);
    await assert.rejects(send(b), refusedAsUnknown);
  });

  it('denies the send in a legacy session after the same caller read a secret in a stateless request', async () => {
    const stateless = await connect('carol', 'modern');
    const legacy = await connect('carol', 'legacy');
    await readSecret(stateless);
    await assert.rejects(send(legacy), refusedAsUnknown);
  });

  it('leaves another caller alone', async () => {
    const bob = await connect('bob', 'legacy');
    assert.match(textOf(await send(bob)), /the secret/);
  });
});
