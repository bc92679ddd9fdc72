import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { auditSchema } from '../../src/audit/config.ts';
import { openAudit } from '../../src/audit/open.ts';
import { GatewayKeyDir } from '../../src/identity/gateway-keys.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { SqliteRevocationStore } from '../../src/state/sqlite.ts';
import { item } from '../audit/helpers.ts';

// The usual umask: without explicit modes, files come out 0644 and directories 0755.
process.umask(0o022);

const mode = (path: string): string => (statSync(path).mode & 0o777).toString(8);
const fresh = (): string => mkdtempSync(join(tmpdir(), 'portcullis-modes-'));

describe('files holding secrets and records are created for their owner only', () => {
  it('creates the audit database, its -wal and -shm files, generated keys and their directories 0600 and 0700', async () => {
    const base = fresh();
    const setup = { config: auditSchema.parse({ path: 'state/audit/audit.db' }), baseDir: base };
    const open = await openAudit(setup, silentLogger);
    await open.log.append(item(1));
    const dir = join(base, 'state/audit');
    const files = readdirSync(dir).sort();
    assert.deepEqual(files, ['audit.db', 'audit.db-shm', 'audit.db-wal', 'hmac.key', 'signing.key']);
    for (const f of files) assert.equal(mode(join(dir, f)), '600', f);
    assert.equal(mode(join(base, 'state')), '700');
    assert.equal(mode(dir), '700');
    await open.log.close();
  });

  it('creates the revocation database and its -wal and -shm files 0600 in a 0700 directory', async () => {
    const base = fresh();
    const store = new SqliteRevocationStore(join(base, 'state/state.db'));
    await store.revoke({ kind: 'jti', value: 'x', revokedAt: 1 });
    for (const f of readdirSync(join(base, 'state'))) assert.equal(mode(join(base, 'state', f)), '600', f);
    assert.deepEqual(readdirSync(join(base, 'state')).sort(), ['state.db', 'state.db-shm', 'state.db-wal']);
    assert.equal(mode(join(base, 'state')), '700');
    await store.close();
  });

  it('creates the gateway token key directory 0700 and each key file in it 0600', () => {
    const base = fresh();
    const keys = new GatewayKeyDir(join(base, 'keys/gateway'));
    keys.signingKey();
    keys.rotate(60);
    const files = readdirSync(join(base, 'keys/gateway'));
    assert.equal(files.length, 2);
    for (const f of files) assert.equal(mode(join(base, 'keys/gateway', f)), '600', f);
    assert.equal(mode(join(base, 'keys')), '700');
    assert.equal(mode(join(base, 'keys/gateway')), '700');
  });
});
