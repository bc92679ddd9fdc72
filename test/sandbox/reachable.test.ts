import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { validateConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/observability/log.ts';
import type { SandboxHost } from '../../src/sandbox/host.ts';
import { sandboxSummary } from '../../src/sandbox/launch.ts';
import { upstreamSandboxes } from '../../src/upstream/sandboxes.ts';

/** A root gateway's host: the sandbox runs as nobody (nothing is spawned here). */
const ROOT_HOST: SandboxHost = {
  available: true,
  bwrap: '/usr/bin/bwrap',
  prlimit: '/usr/bin/prlimit',
  env: '/usr/bin/env',
  setpriv: '/usr/bin/setpriv',
};

function closedCheckout(): string {
  const closed = mkdtempSync(join(tmpdir(), 'pc-closed-'));
  mkdirSync(join(closed, 'srv'));
  writeFileSync(join(closed, 'srv', 'server.js'), '');
  chmodSync(join(closed, 'srv', 'server.js'), 0o644);
  chmodSync(closed, 0o700);
  return join(closed, 'srv', 'server.js');
}

const modeOf = (upstream: Record<string, unknown>) => {
  const loaded = { config: validateConfig({ upstreams: { s: upstream } }), baseDir: tmpdir() };
  const sandbox = upstreamSandboxes(loaded as never, silentLogger, ROOT_HOST).get('s')!;
  return sandboxSummary(sandbox.mode, sandbox.host);
};

it('runs an upstream its sandbox user cannot reach unsandboxed when the config leaves the sandbox out', () => {
  const script = closedCheckout();
  assert.deepEqual(modeOf({ transport: 'stdio', command: '/usr/bin/node', args: [script] }), {
    mechanism: 'none',
    why: 'unavailable',
  });
});

it('refuses such an upstream when its config asks for a sandbox', () => {
  const script = closedCheckout();
  const upstream = {
    transport: 'stdio',
    command: '/usr/bin/node',
    args: [script],
    sandbox: { network: 'none' },
  };
  assert.deepEqual(modeOf(upstream), { mechanism: 'none', why: 'refused' });
});
