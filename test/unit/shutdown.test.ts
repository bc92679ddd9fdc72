import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { closeOnStop } from '../../src/cli/shutdown.ts';
import { silentLogger } from '../../src/observability/log.ts';

describe('closing a stopped gateway', () => {
  it('ends the process with code 1 and names the part still closing when the close never finishes', async () => {
    const errors: Record<string, unknown>[] = [];
    const log = {
      ...silentLogger,
      error: (_msg: string, fields: Record<string, unknown> = {}) => errors.push(fields),
    };
    const exited = new Promise<number>((resolve) => {
      void closeOnStop(
        {
          close: (onStep) => {
            onStep?.('MCP listener');
            return new Promise<void>(() => {});
          },
        },
        log,
        { graceMs: 0, exit: resolve },
      );
    });
    assert.equal(await exited, 1);
    assert.deepEqual(errors, [{ step: 'MCP listener', graceMs: 0 }]);
  });

  it('never ends the process when the close finishes', async () => {
    let exitCode: number | undefined;
    await closeOnStop({ close: async () => {} }, silentLogger, { exit: (code) => (exitCode = code) });
    assert.equal(exitCode, undefined);
  });
});
