import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from '../../src/jsonrpc.ts';
import { revocationGate } from '../../src/upstream/revocation-gate.ts';

const note = (n: number): JsonRpcNotification => ({
  jsonrpc: '2.0',
  method: 'notifications/message',
  params: { n },
});
const ask: JsonRpcRequest = { jsonrpc: '2.0', id: 9, method: 'sampling/createMessage', params: {} };

function client() {
  const seen: unknown[] = [];
  return {
    seen,
    notify: (m: JsonRpcNotification) => void seen.push(m.params?.n),
    request: async (m: JsonRpcRequest): Promise<JsonRpcResponse> => {
      seen.push(m.method);
      return { jsonrpc: '2.0', id: m.id, result: {} };
    },
  };
}
const settle = () => new Promise((r) => setImmediate(r));

describe('the revocation gate on a long-lived stream', () => {
  it('relays in order while the caller passes the check, each message checked', async () => {
    const c = client();
    let checks = 0;
    const gate = revocationGate(
      c,
      async () => void checks++,
      () => assert.fail('not refused'),
    );
    for (let n = 1; n <= 5; n++) gate.notify(note(n));
    assert.deepEqual((await gate.request(ask)).result, {});
    assert.deepEqual(c.seen, [1, 2, 3, 4, 5, 'sampling/createMessage']);
    assert.equal(checks, 6);
  });

  it('drops what comes while the caller is refused and ends the stream; a refreshed caller passes again', async () => {
    const c = client();
    let revoked = false;
    let ended = 0;
    const gate = revocationGate(
      c,
      async () => {
        if (revoked) throw new Error('revoked');
      },
      () => ended++,
    );
    gate.notify(note(1));
    await settle();
    revoked = true;
    gate.notify(note(2));
    const answer = await gate.request(ask);
    assert.deepEqual(c.seen, [1]);
    assert.equal(answer.result, undefined);
    assert.equal(answer.error?.message, 'Client stream unavailable');
    assert.equal(ended, 2);
    revoked = false; // the client came back with a fresh token: the session's principal passes again
    gate.notify(note(3));
    await settle();
    assert.deepEqual(c.seen, [1, 3]);
  });

  it('survives a client stream that throws: later messages still go out', async () => {
    let calls = 0;
    const gate = revocationGate(
      {
        notify: () => {
          calls++;
          if (calls === 1) throw new Error('stream broke');
        },
        request: async (m) => ({ jsonrpc: '2.0', id: m.id, result: {} }),
      },
      async () => {},
      () => assert.fail('not refused'),
    );
    gate.notify(note(1));
    gate.notify(note(2));
    await settle();
    assert.equal(calls, 2);
  });
});
