import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config/load.ts';
import { probeUpstream } from '../helpers.ts';

const config = (audit: unknown) => ({ upstreams: { probe: probeUpstream() }, audit });

describe('the audit config section', () => {
  it('fills sensible defaults for an embedded SQLite log', () => {
    const audit = validateConfig(config({})).audit!;
    assert.equal(audit.store, 'sqlite');
    assert.deepEqual(audit.checkpoint, { everyEntries: 256, everyMs: 1000 });
    assert.deepEqual(audit.groupCommit, { enabled: true, maxBatch: 512 });
    assert.deepEqual(audit.clearArguments, []);
  });

  it('rejects unknown keys, keys given in clear and origins with spaces, naming the path', () => {
    assert.throws(
      () => validateConfig(config({ stroe: 'sqlite' })),
      (err: Error & { issues: { path: string }[] }) => {
        assert.equal(err.issues[0]?.path, 'audit.stroe');
        return true;
      },
    );
    assert.throws(
      () => validateConfig(config({ signingKey: 'PRIVATE+KEY+x+00000000+AAAA' })),
      (
        err: Error & {
          issues: { path: string }[];
        },
      ) => {
        assert.equal(err.issues[0]?.path, 'audit.signingKey');
        return true;
      },
    );
    assert.throws(
      () => validateConfig(config({ origin: 'my log' })),
      (err: Error & { issues: { path: string }[] }) => {
        assert.equal(err.issues[0]?.path, 'audit.origin');
        return true;
      },
    );
  });
});
