import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config/load.ts';
import { PortcullisError } from '../../src/errors.ts';
import { sandboxWarnings } from '../../src/sandbox/risks.ts';
import { runCli } from '../helpers.ts';

const withSandbox = (sandbox: unknown) =>
  validateConfig({ upstreams: { s: { transport: 'stdio', command: 'node', sandbox } } });

describe('the sandbox config section', () => {
  it('fills in no network, nothing writable and the default limits', () => {
    const up = withSandbox({}).upstreams.s;
    assert.ok(up?.transport === 'stdio' && up.sandbox && up.sandbox !== 'off');
    assert.equal(up.sandbox.network, 'none');
    assert.deepEqual(up.sandbox.writable, []);
    assert.deepEqual(up.sandbox.limits, {
      memoryMb: 2048,
      processes: 256,
      openFiles: 1024,
      cpuSeconds: 86_400,
    });
  });

  it('rejects unknown keys, a memory limit node cannot start under, and an empty allowlist', () => {
    const refused = (sandbox: unknown) =>
      assert.throws(
        () => withSandbox(sandbox),
        (e) => e instanceof PortcullisError && e.code === 'ERR_CONFIG_INVALID',
      );
    refused({ netwrok: 'none' });
    refused({ limits: { memoryMb: 32 } });
    refused({ network: { allow: [] } });
    refused({ network: { allow: ['http://x'] } });
    refused({ network: 'bridge' });
  });

  it('flags network host and sandbox off as lateral-movement risks', () => {
    assert.match(sandboxWarnings(withSandbox({ network: 'host' }))[0]!, /lateral-movement risk/);
    assert.match(sandboxWarnings(withSandbox('off'))[0]!, /lateral-movement risk/);
    assert.deepEqual(sandboxWarnings(withSandbox({ network: { allow: ['example.com'] } })), []);
  });

  it('has config check print the warning and still pass', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-sandbox-check-'));
    try {
      const file = join(dir, 'p.json');
      writeFileSync(
        file,
        JSON.stringify({
          upstreams: { s: { transport: 'stdio', command: 'node', sandbox: { network: 'host' } } },
        }),
      );
      const ran = await runCli(['config', 'check', file]);
      assert.equal(ran.code, 0);
      assert.match(ran.stdout, /warning: upstreams\.s\.sandbox\.network: host — lateral-movement risk/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
