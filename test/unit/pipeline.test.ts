import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Denial, JSONRPC } from '../../src/errors.ts';
import { resultResponse } from '../../src/jsonrpc.ts';
import type { CallContext } from '../../src/pipeline/context.ts';
import { createPipeline, type Stage } from '../../src/pipeline/runner.ts';
import { testCallContext } from '../helpers.ts';

const context = (): CallContext =>
  testCallContext({ request: { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'x' } } });

const log = { error() {} };
const recorder = (seen: string[], name: string, effect?: (ctx: CallContext) => void): Stage => ({
  name,
  run(ctx) {
    seen.push(name);
    effect?.(ctx);
  },
});

describe('pipeline runner', () => {
  it('runs stages in order until one answers, then runs the terminal stage', async () => {
    const seen: string[] = [];
    const p = createPipeline(
      [
        recorder(seen, 'a'),
        recorder(seen, 'b', (c) => (c.response = resultResponse(7, {}))),
        recorder(seen, 'c'),
      ],
      [recorder(seen, 'audit')],
      log,
    );
    const ctx = context();
    await p.run(ctx);
    assert.deepEqual(seen, ['a', 'b', 'audit']);
    assert.deepEqual(ctx.response?.result, {});
    assert.ok('a' in ctx.timings && 'audit' in ctx.timings);
  });

  it('turns a typed denial into its public JSON-RPC error and still runs the terminal stage', async () => {
    const seen: string[] = [];
    const deny = recorder(seen, 'deny', () => {
      throw new Denial('ERR_UNKNOWN_TARGET', 'secret detail: upstream fs', { publicArgs: ['tool'] });
    });
    const p = createPipeline([deny, recorder(seen, 'forward')], [recorder(seen, 'audit')], log);
    const ctx = context();
    await p.run(ctx);
    assert.deepEqual(seen, ['deny', 'audit']);
    assert.equal(ctx.error?.code, 'ERR_UNKNOWN_TARGET');
    assert.deepEqual(ctx.response?.error, { code: JSONRPC.INVALID_PARAMS, message: 'Unknown tool' });
    assert.equal(ctx.response?.id, 7);
  });

  it('hides an unexpected error behind a generic internal error', async () => {
    const p = createPipeline(
      [
        {
          name: 'boom',
          run() {
            throw new Error('password=hunter2');
          },
        },
      ],
      [],
      log,
    );
    const ctx = context();
    await p.run(ctx);
    assert.equal(ctx.error?.code, 'ERR_INTERNAL');
    assert.deepEqual(ctx.response?.error, { code: JSONRPC.INTERNAL_ERROR, message: 'Internal error' });
  });

  it('fails closed when no stage answers', async () => {
    const p = createPipeline([recorder([], 'noop')], [], log);
    const ctx = context();
    await p.run(ctx);
    assert.equal(ctx.response?.error?.code, JSONRPC.INTERNAL_ERROR);
  });

  it('keeps running the remaining terminal stages when one of them throws', async () => {
    const seen: string[] = [];
    const failing: Stage = {
      name: 't1',
      run() {
        throw new Error('x');
      },
    };
    const p = createPipeline(
      [recorder(seen, 'a', (c) => (c.response = resultResponse(7, {})))],
      [failing, recorder(seen, 't2')],
      log,
    );
    await p.run(context());
    assert.deepEqual(seen, ['a', 't2']);
  });
});
