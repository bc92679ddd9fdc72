import assert from 'node:assert/strict';
import { join } from 'node:path';
import { it } from 'node:test';
import { validateConfig } from '../../src/config/load.ts';
import { gatewayPrivatePaths } from '../../src/sandbox/hidden.ts';

const BASE = '/srv/gw';

it('hides the result-signing keys and the gateway folder, where an audit log with no section keeps its keys', () => {
  const config = validateConfig({
    upstreams: { fs: { transport: 'stdio', command: '/bin/true' } },
  });
  const hidden = gatewayPrivatePaths(config, { baseDir: BASE, upstream: 'fs', home: '/home/gw' });
  assert.ok(hidden.includes(join(BASE, '.portcullis/attest-keys')), hidden.join());
  assert.ok(hidden.includes(join(BASE, '.portcullis')), hidden.join());
  assert.ok(hidden.includes('/home/gw'));
});

it('hides a result-signing key folder configured elsewhere', () => {
  const config = validateConfig({
    attest: { keyDir: '/etc/portcullis/attest' },
    upstreams: { fs: { transport: 'stdio', command: '/bin/true' } },
  });
  const hidden = gatewayPrivatePaths(config, { baseDir: BASE, upstream: 'fs', home: '/home/gw' });
  assert.ok(hidden.includes('/etc/portcullis/attest'), hidden.join());
});
