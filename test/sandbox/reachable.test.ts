import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { validateConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { dirReachableBySandbox, type SandboxHost } from '../../src/sandbox/host.ts';
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
  const sandbox = upstreamSandboxes(loaded as never, silentLogger, ROOT_HOST, {
    record: () => {},
    recordable: () => true,
  }).get('s')!;
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

it('finds a folder handed to the sandbox unreachable when a folder above it is closed to others', () => {
  const base = mkdtempSync(join(tmpdir(), 'pc-dirs-'));
  chmodSync(base, 0o755);
  const open = join(base, 'open', 'writable');
  const closed = join(base, 'closed', 'writable');
  mkdirSync(open, { recursive: true });
  mkdirSync(closed, { recursive: true });
  chmodSync(join(base, 'open'), 0o755);
  chmodSync(join(base, 'closed'), 0o700);
  assert.equal(dirReachableBySandbox(ROOT_HOST, open), true, 'every folder above is open (/tmp is 1777)');
  assert.equal(dirReachableBySandbox(ROOT_HOST, closed), false);
  assert.equal(
    dirReachableBySandbox({ ...ROOT_HOST, setpriv: undefined } as SandboxHost, closed),
    true,
    'not root: its own folders',
  );
});
