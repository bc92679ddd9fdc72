import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';

const FIXTURE = fileURLToPath(new URL('../fixtures/cedar-lazy-deopt.ts', import.meta.url));

it('survives a caller of Cedar being deoptimized while the Wasm call runs, with JS-to-Wasm inlining on (V8 12.4 aborted with SIGTRAP; V8 14 needs no guard)', () => {
  const run = spawnSync(process.execPath, [FIXTURE], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(run.signal, null, `the process died: ${run.stderr.slice(-600)}`);
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), 'allow 200002', 'every decision ran and the changed field was read');
});
