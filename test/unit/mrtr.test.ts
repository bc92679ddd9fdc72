import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PortcullisError } from '../../src/errors.ts';
import type { JsonObject, JsonRpcMessage, JsonRpcRequest, JsonRpcResponse } from '../../src/jsonrpc.ts';
import { ReplyBook } from '../../src/transport/channel.ts';
import { UpstreamConnection } from '../../src/upstream/connection.ts';
import { fulfilInputRequired } from '../../src/upstream/mrtr.ts';

const inputRequired: JsonRpcResponse = {
  jsonrpc: '2.0',
  id: 7,
  result: {
    resultType: 'input_required',
    inputRequests: { who: { method: 'elicitation/create', params: { message: 'name?' } } },
    requestState: 'opaque-1',
  },
};
const done: JsonRpcResponse = { jsonrpc: '2.0', id: 8, result: { content: [] } };

/** A client that answers every server request with `answer`, or never when `answer` is undefined. */
const clientAnswering = (answer?: JsonObject) => ({
  asked: [] as JsonRpcRequest[],
  notify() {},
  request(message: JsonRpcRequest): Promise<JsonRpcResponse> {
    this.asked.push(message);
    return answer
      ? Promise.resolve({ jsonrpc: '2.0', id: message.id, result: answer })
      : new Promise(() => {});
  },
});

describe('input_required rounds for a legacy client', () => {
  it('asks the client, then retries with its answers and the request state', async () => {
    const sink = clientAnswering({ action: 'accept', content: { name: 'ada' } });
    const retried: JsonObject[] = [];
    const res = await fulfilInputRequired(
      inputRequired,
      { name: 'tool' },
      {
        sink,
        retry: async (p) => {
          retried.push(p);
          return done;
        },
        signal: new AbortController().signal,
        beforeRetry: async () => {},
      },
    );
    assert.equal(res, done);
    assert.equal(sink.asked[0]?.method, 'elicitation/create');
    assert.deepEqual(retried, [
      {
        name: 'tool',
        inputResponses: { who: { action: 'accept', content: { name: 'ada' } } },
        requestState: 'opaque-1',
      },
    ]);
  });

  it('ends the call without a retry when it is cancelled while the client is being asked', async () => {
    const abort = new AbortController();
    let retries = 0;
    const pending = fulfilInputRequired(
      inputRequired,
      {},
      {
        sink: clientAnswering(),
        retry: async () => {
          retries++;
          return done;
        },
        signal: abort.signal,
        beforeRetry: async () => {},
      },
    );
    abort.abort();
    const res = await pending;
    assert.deepEqual(res.error, { code: -32603, message: 'Request cancelled' });
    assert.equal(retries, 0);
  });

  it('sends no retry when the caller is refused on the second look (revoked meanwhile)', async () => {
    let retries = 0;
    await assert.rejects(
      fulfilInputRequired(
        inputRequired,
        {},
        {
          sink: clientAnswering({ action: 'accept' }),
          retry: async () => {
            retries++;
            return done;
          },
          signal: new AbortController().signal,
          beforeRetry: async () => {
            throw new PortcullisError('ERR_TOKEN_REVOKED', 'revoked');
          },
        },
      ),
      { code: 'ERR_TOKEN_REVOKED' },
    );
    assert.equal(retries, 0);
  });
});

describe('an upstream connection', () => {
  it('sends nothing for a call cancelled before it was sent', async () => {
    const sent: JsonRpcMessage[] = [];
    const transport = {
      start: async () => {},
      send: async (m: JsonRpcMessage) => void sent.push(m),
      close: async () => {},
    };
    const conn = new UpstreamConnection(transport, { name: 'up', timeoutMs: 1000 });
    const abort = new AbortController();
    abort.abort();
    const res = await conn.request('tools/call', { name: 'x' }, { signal: abort.signal });
    assert.deepEqual(res.error, { code: -32603, message: 'Request cancelled' });
    assert.deepEqual(sent, []);
  });

  it('says with each reply whether the upstream answered, may have acted unanswered, or never got the request', async () => {
    const sent: JsonRpcMessage[] = [];
    const transport = {
      start: async () => {},
      send: async (m: JsonRpcMessage) => void sent.push(m),
      close: async () => {},
      onmessage: undefined as ((m: JsonRpcMessage) => void) | undefined,
    };
    const conn = new UpstreamConnection(transport, { name: 'up', timeoutMs: 0 });
    const answered = conn.exchange('tools/call', { name: 'x' });
    const sentId = (sent[0] as JsonRpcRequest).id;
    transport.onmessage?.({ jsonrpc: '2.0', id: sentId, result: { content: [] } });
    assert.equal((await answered).outcome, 'answered');
    const abort = new AbortController();
    const cancelled = conn.exchange('tools/call', { name: 'x' }, { signal: abort.signal });
    abort.abort();
    assert.equal((await cancelled).outcome, 'no-answer');
    assert.equal((await conn.exchange('tools/call', {}, { signal: abort.signal })).outcome, 'not-sent');
    await conn.close();
    assert.equal((await conn.exchange('tools/call', {})).outcome, 'not-sent');
  });
});

describe('a question put to the client', () => {
  it('is withdrawn when its call is cancelled: the client is told, and a late answer finds nothing waiting', async () => {
    const book = new ReplyBook();
    const sent: JsonRpcMessage[] = [];
    const abort = new AbortController();
    const asked = book.open(
      { jsonrpc: '2.0', id: 0, method: 'elicitation/create', params: {} },
      (m) => sent.push(m) > 0,
      abort.signal,
    );
    const question = sent[0] as JsonRpcRequest;
    abort.abort();
    assert.deepEqual((await asked).error, { code: -32603, message: 'Request cancelled' });
    assert.deepEqual(sent[1], {
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: question.id },
    });
    assert.equal(book.settle({ jsonrpc: '2.0', id: question.id, result: {} }), false);
  });

  it('is answered as before when nothing cancels it', async () => {
    const book = new ReplyBook();
    const sent: JsonRpcMessage[] = [];
    const asked = book.open(
      { jsonrpc: '2.0', id: 0, method: 'elicitation/create', params: {} },
      (m) => sent.push(m) > 0,
      new AbortController().signal,
    );
    const question = sent[0] as JsonRpcRequest;
    assert.equal(book.settle({ jsonrpc: '2.0', id: question.id, result: { action: 'accept' } }), true);
    assert.deepEqual((await asked).result, { action: 'accept' });
    assert.equal(sent.length, 1);
  });
});
