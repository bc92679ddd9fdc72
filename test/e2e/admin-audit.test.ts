import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { loadConfigFile } from '../../src/config/load.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { type RunningGateway, startGateway } from '../../src/server.ts';
import { initializeBody, PERMIT_ALL_POLICY, post, probeUpstream, runCli } from '../helpers.ts';

/** The gateway's config; `audit` is left to each config written from it. */
const base = {
  listen: { host: '127.0.0.1', port: 0 },
  identity: {
    mode: 'token',
    resource: 'https://gw.test/mcp',
    gatewayTokens: { keyDir: 'keys', maxTtlSeconds: 3600 },
  },
  attest: { keyDir: 'attest-keys' },
  state: { store: 'sqlite', path: 'state.db' },
  upstreams: { probe: probeUpstream() },
  policy: { files: [PERMIT_ALL_POLICY] },
  approvals: { approvers: { operators: ['alice', 'bob', 'carol'] } },
};

describe('what operators do to identities and keys, in the audit log', () => {
  let dir: string;
  let configPath: string;
  /** The same gateway's config with an audit log that cannot be opened (its folder is a file). */
  let brokenPath: string;
  let gw: RunningGateway;
  let closed = false;
  const issue = (config: string, sub: string, extra: string[] = []) =>
    runCli([
      'token',
      'issue',
      '--config',
      config,
      '--sub',
      sub,
      '--tools',
      'probe__echo',
      '--ttl',
      '10m',
      '--reason',
      'ticket 4711',
      ...extra,
    ]);
  const init = (token: string) =>
    post(gw.listener.url, initializeBody(), { authorization: `Bearer ${token}` });
  const admin = (): Record<string, unknown>[] => {
    const db = new DatabaseSync(join(dir, 'audit', 'audit.db'), { readOnly: true });
    try {
      const rows = db
        .prepare(
          "SELECT leaf, principal, decision, call_id FROM audit_entries WHERE kind = 'admin' ORDER BY idx",
        )
        .all() as { leaf: Uint8Array; principal: string; decision: string; call_id: string }[];
      return rows.map((r) => ({
        ...JSON.parse(Buffer.from(r.leaf).toString('utf8')),
        columns: [r.principal, r.decision, r.call_id],
      }));
    } finally {
      db.close();
    }
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-admin-audit-'));
    configPath = join(dir, 'portcullis.yaml');
    brokenPath = join(dir, 'broken.yaml');
    writeFileSync(configPath, stringify({ ...base, audit: { path: 'audit/audit.db' } }));
    writeFileSync(join(dir, 'not-a-folder'), 'a file where the audit folder should be\n');
    writeFileSync(brokenPath, stringify({ ...base, audit: { path: 'not-a-folder/audit.db' } }));
    gw = await startGateway(loadConfigFile(configPath), silentLogger, { banner: false });
  });
  after(async () => {
    if (!closed) await gw.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('records a token issued, by whom, for what and until when, and never the token itself', async () => {
    const r = await issue(configPath, 'agent-1', ['--as', 'alice', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const { token, jti, exp } = JSON.parse(r.stdout) as { token: string; jti: string; exp: number };
    assert.equal((await init(token)).status, 200);
    const issued = admin().find((a) => a.event === 'token-issued' && a.jti === jti);
    assert.ok(issued, 'the issue is recorded');
    assert.deepEqual(issued.columns, ['operator:alice', 'token-issued', jti]);
    assert.deepEqual(
      [issued.sub, issued.allowedTools, issued.allowedPrompts, issued.allowedResources, issued.reason],
      ['agent-1', ['probe__echo'], [], [], 'ticket 4711'],
    );
    assert.equal(issued.expiresAt, exp * 1000);
    assert.equal((issued.actor as { operator: string }).operator, 'operator:alice');
    assert.equal(typeof (issued.actor as { osUser: string }).osUser, 'string');
    // Nowhere in the database or its write-ahead log, in any record, nor on stderr.
    const files = ['audit.db', 'audit.db-wal'].map((f) => join(dir, 'audit', f)).filter((f) => existsSync(f));
    const signature = Buffer.from(token.split('.')[2]!);
    for (const f of files) assert.equal(readFileSync(f).indexOf(signature), -1, `no token signature in ${f}`);
    assert.ok(!r.stderr.includes(token.split('.')[2]!));
  });

  it('names the account the command ran as when no --as is given', async () => {
    const r = await runCli([
      'revoke',
      '--config',
      configPath,
      '--sub',
      'agent-9',
      '--reason',
      'left the team',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const revoked = admin().find(
      (a) => a.event === 'revoked' && (a.revoked as { value: string }).value === 'agent-9',
    );
    assert.ok(revoked);
    assert.match(String((revoked.principal as { id: string }).id), /^os:./);
    assert.deepEqual([revoked.revoked, revoked.reason], [{ kind: 'sub', value: 'agent-9' }, 'left the team']);
  });

  it('lists what is revoked, oldest first, as text or JSON', async () => {
    const text = await runCli(['revoke', '--config', configPath, '--list']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^\d{4}-\d\d-\d\dT[\d:.]+Z {2}sub {2}"agent-9" {2}left the team$/m);
    const json = await runCli(['revoke', '--config', configPath, '--list', '--json']);
    const rows = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; value: string; revokedAt: number; reason?: string });
    const agent9 = rows.find((r) => r.value === 'agent-9');
    assert.deepEqual(
      [agent9?.kind, agent9?.reason, typeof agent9?.revokedAt],
      ['sub', 'left the team', 'number'],
    );
    const times = rows.map((r) => r.revokedAt);
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
      'oldest first',
    );
  });

  it('refuses an --as that is not a configured operator, and issues or revokes nothing', async () => {
    const before = admin().length;
    const r = await issue(configPath, 'agent-1', ['--as', 'os:root']);
    assert.deepEqual([r.code, r.stdout], [1, '']);
    assert.match(r.stderr, /\[ERR_APPROVER_NOT_ALLOWED\] "os:root" is not in approvals.approvers.operators/);
    const empty = await issue(configPath, 'agent-1', ['--as', '']);
    assert.deepEqual([empty.code, empty.stdout], [1, '']);
    assert.match(empty.stderr, /\[ERR_USAGE\]/);
    const revoke = await runCli(['revoke', '--config', configPath, '--sub', 'agent-1', '--as', 'mallory']);
    assert.equal(revoke.code, 1);
    assert.match(revoke.stderr, /\[ERR_APPROVER_NOT_ALLOWED\]/);
    assert.equal(admin().length, before);
    const still = JSON.parse((await issue(configPath, 'agent-1', ['--json'])).stdout) as { token: string };
    assert.equal((await init(still.token)).status, 200, 'agent-1 was not revoked');
  });

  it('refuses what would not fit one log entry before acting: no token, no revocation', async () => {
    const before = admin().length;
    const long = 'x'.repeat(70_000);
    const r = await issue(configPath, 'agent-5', ['--reason', long]);
    assert.deepEqual([r.code, r.stdout], [2, '']);
    assert.match(r.stderr, /the token-issued record would be \d+ bytes, over 61440/);
    const revoke = await runCli(['revoke', '--config', configPath, '--sub', long]);
    assert.equal(revoke.code, 2);
    assert.match(revoke.stderr, /the revoked record would be/);
    assert.equal(admin().length, before);
    const export_ = await runCli(['audit', 'verify', '--config', configPath]);
    assert.equal(export_.code, 0, export_.stderr);
  });

  it('hands out no token when its issue cannot be recorded', async () => {
    const r = await issue(brokenPath, 'agent-2', ['--as', 'alice']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '', 'no token printed');
    assert.match(r.stderr, /\[ERR_AUDIT_UNAVAILABLE\] token .* for agent-2 was not handed out/);
  });

  it('revokes even when the audit log is down, and says the revocation went unrecorded', async () => {
    const r = await issue(configPath, 'agent-3', ['--json']);
    const { token, jti } = JSON.parse(r.stdout) as { token: string; jti: string };
    assert.equal((await init(token)).status, 200);
    const revoked = await runCli(['revoke', '--config', brokenPath, '--jti', jti, '--as', 'bob']);
    assert.equal(revoked.code, 1);
    assert.deepEqual(JSON.parse(revoked.stdout), { event: 'revoked', kind: 'jti', value: jti });
    assert.match(
      revoked.stderr,
      /\[ERR_AUDIT_UNAVAILABLE\] jti .* is revoked: the audit log could not record it/,
    );
    assert.equal((await init(token)).status, 401, 'the revocation took effect');
  });

  it('records each key rotation with the new and the retired key ids', async () => {
    const tokenKeys = await runCli(['keys', 'rotate', '--config', configPath, '--as', 'carol']);
    assert.equal(tokenKeys.code, 0, tokenKeys.stderr);
    const resultKeys = await runCli(['attest', 'rotate', '--config', configPath, '--as', 'carol']);
    assert.equal(resultKeys.code, 0, resultKeys.stderr);
    const printed = [JSON.parse(tokenKeys.stdout), JSON.parse(resultKeys.stdout)] as {
      kid: string;
      retired: string[];
    }[];
    const rotations = admin().filter((a) => String(a.event).endsWith('keys-rotated'));
    assert.deepEqual(
      rotations.map((a) => [a.event, (a.principal as { id: string }).id, a.kid, a.retired]),
      [
        ['token-keys-rotated', 'operator:carol', printed[0]!.kid, printed[0]!.retired],
        ['attest-keys-rotated', 'operator:carol', printed[1]!.kid, printed[1]!.retired],
      ],
    );
  });

  it('rotates a key even when the audit log is down, and says the rotation went unrecorded', async () => {
    const rotated = await runCli(['keys', 'rotate', '--config', brokenPath]);
    assert.equal(rotated.code, 1);
    const { event, kid } = JSON.parse(rotated.stdout) as { event: string; kid: string };
    assert.equal(event, 'keys-rotated');
    assert.match(
      rotated.stderr,
      /\[ERR_AUDIT_UNAVAILABLE\] token signing key .* is in use: the audit log could not record it/,
    );
    const r = await issue(configPath, 'agent-6');
    const header = JSON.parse(Buffer.from(r.stdout.split('.')[0]!, 'base64url').toString()) as {
      kid: string;
    };
    assert.equal(header.kid, kid, 'the new key signs');
  });

  // Closes the gateway: keep it last.
  it('leaves a log that verifies, the gateway having written to it between the commands', async () => {
    const r = await issue(configPath, 'agent-4', ['--json']);
    assert.equal((await init((JSON.parse(r.stdout) as { token: string }).token)).status, 200);
    await gw.close();
    closed = true;
    const verified = await runCli(['audit', 'verify', '--config', configPath]);
    assert.equal(verified.code, 0, verified.stderr);
    assert.equal((JSON.parse(verified.stdout) as { ok: boolean }).ok, true);
    const events = admin().map((a) => a.event);
    assert.deepEqual(
      events.filter((e) => e === 'token-issued').length,
      5,
      'agent-1 twice, agent-3, agent-4 and agent-6: nothing for the ones refused',
    );
  });
});
