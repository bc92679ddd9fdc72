import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/observability/log.ts';
import { failingChecks, Readiness } from '../../src/observability/readiness.ts';

describe('the readiness checks', () => {
  it('name the checks that fail, sorted, and none when all pass', async () => {
    const checks = {
      b: async () => Promise.reject(new Error('down')),
      a: async () => Promise.reject(new Error('down')),
      c: async () => 'fine',
    };
    assert.deepEqual(await failingChecks(checks, silentLogger), ['a', 'b']);
    assert.deepEqual(await failingChecks({ c: async () => 'fine' }, silentLogger), []);
  });

  it('count a check that never answers as failing once its time is up', async () => {
    const never = () => new Promise<never>(() => {});
    assert.deepEqual(await failingChecks({ hung: never }, silentLogger, 20), ['hung']);
  });

  it('run once for every probe that arrives while they run, and answer from that for reuseMs', async () => {
    let clock = 0;
    let runs = 0;
    const gate: { release?: () => void } = {};
    const readiness = new Readiness({
      checks: {
        store: () => {
          runs++;
          return new Promise<void>((r) => {
            gate.release = r;
          });
        },
      },
      log: silentLogger,
      now: () => clock,
      reuseMs: 1000,
    });
    /** Lets the round in progress answer, once it has begun. */
    const releaseRound = async () => {
      while (!gate.release) await new Promise((r) => setImmediate(r));
      const release = gate.release;
      delete gate.release;
      release();
    };
    const first = readiness.failing();
    const second = readiness.failing();
    await releaseRound();
    assert.deepEqual(await Promise.all([first, second]), [[], []]);
    assert.equal(runs, 1, 'one round for both probes');
    clock = 999;
    await readiness.failing();
    assert.equal(runs, 1, 'answered from the last round');
    clock = 1000;
    const third = readiness.failing();
    await releaseRound();
    await third;
    assert.equal(runs, 2, 'a new round once reuseMs passed');
  });
});
