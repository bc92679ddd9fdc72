import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openAuditStore } from '../../src/audit/open.ts';
import type { RunningGateway } from '../../src/server.ts';
import {
  attack,
  auditFixture,
  bytesLiteral,
  dropPgTables,
  type StoreKind,
  tableOf,
} from '../audit/helpers.ts';
import { httpClient, PERMIT_ALL_POLICY, probeUpstream, runCli, startTestGateway } from '../helpers.ts';

type Loose = Record<string, unknown>;

const leaves = async (f: ReturnType<typeof auditFixture>): Promise<Loose[]> => {
  const store = await openAuditStore(f.setup);
  try {
    return (await store.entries(0, (await store.head()).size)).map(
      (e) => JSON.parse(e.leaf.toString()) as Loose,
    );
  } finally {
    await store.close();
  }
};

const decisionHashes = (records: Loose[]) =>
  records
    .filter((r) => r.type === 'decision' && r.tool === 'probe__echo')
    .map((r) => (r.decision as { policySetHash: string }).policySetHash);

/** Permits everything but the named tool (so a reload changes what is decided). */
const forbidding = (tool: string) =>
  `${readFileSync(PERMIT_ALL_POLICY, 'utf8')}\n@id("no-${tool}")\nforbid (principal, action == Action::"tools/call", resource == Tool::"${tool}");\n`;

for (const kind of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`the policy sets a gateway decided with, in its audit log on ${kind}`, () => {
    after(() => dropPgTables());

    async function gatewayWith(policyText: string) {
      const f = auditFixture(kind);
      const policyFile = join(f.dir, 'policy.cedar');
      writeFileSync(policyFile, policyText);
      const gw = await startTestGateway({
        upstreams: { probe: probeUpstream() },
        audit: f.raw,
        policy: { files: [policyFile] },
      });
      return { f, policyFile, gw };
    }

    const echo = async (gw: RunningGateway) => {
      const client = await httpClient(gw.listener.url, 'legacy');
      try {
        await client.callTool({ name: 'probe__echo', arguments: { text: 'hi' } });
      } finally {
        await client.close();
      }
    };

    it('records each set before the first decision that names it, and the texts that make its hash', async () => {
      const { f, policyFile, gw } = await gatewayWith(forbidding('probe__other'));
      try {
        await echo(gw);
        writeFileSync(policyFile, forbidding('probe__third'));
        assert.equal(gw.gateway.policy.reload().ok, true);
        await echo(gw);
        writeFileSync(policyFile, 'permit (principal, action, resource) when { nonsense };');
        assert.equal(gw.gateway.policy.reload().ok, false);
        await echo(gw);
      } finally {
        await gw.close();
      }
      const records = await leaves(f);
      const sets = records.filter((r) => r.type === 'policy-set');
      assert.deepEqual(
        sets.map((s) => s.event),
        ['loaded', 'reloaded', 'refused'],
      );
      const [first, second] = decisionHashes(records);
      assert.deepEqual(
        decisionHashes(records),
        [first, second, second],
        'the refused reload changed nothing',
      );
      assert.notEqual(first, second);
      assert.deepEqual(
        sets.map((s) => s.policySetHash),
        [first, second, second],
      );
      // Each set is in the log before the first decision naming it.
      const at = (pred: (r: Loose) => boolean) => records.findIndex(pred);
      for (const hash of [first, second]) {
        const set = at((r) => r.type === 'policy-set' && r.policySetHash === hash);
        const decision = at(
          (r) => r.type === 'decision' && (r.decision as { policySetHash?: string }).policySetHash === hash,
        );
        assert.ok(set >= 0 && set < decision, `set ${hash} at ${set}, its first decision at ${decision}`);
      }
      assert.match(String((sets[2]!.problems as string[])[0]), /policy\.cedar/);

      const shown = await runCli([
        'audit',
        'policy',
        '--config',
        f.configPath,
        '--hash',
        String(first),
        '--json',
      ]);
      assert.equal(shown.code, 0, shown.stderr);
      const found = JSON.parse(shown.stdout) as {
        policySetHash: string;
        event: string;
        sets: { live: { files: string[]; policies: { id: string; text: string }[] } };
      };
      assert.deepEqual([found.policySetHash, found.event], [first, 'loaded']);
      assert.deepEqual(found.sets.live.files, [policyFile]);
      assert.ok(
        found.sets.live.policies.some((p) => p.id === 'no-probe__other' && p.text.includes('forbid')),
      );
      const latest = await runCli(['audit', 'policy', '--config', f.configPath]);
      assert.equal(latest.code, 0, latest.stderr);
      assert.match(latest.stdout, new RegExp(`^// policy set ${second}: reloaded `));
      assert.match(latest.stdout, /\/\/ no-probe__third\n@id\("no-probe__third"\)\nforbid/);
      const verified = await runCli(['audit', 'verify', '--config', f.configPath]);
      assert.equal(verified.code, 0, verified.stderr);
    });

    it('says so when the log names no such set, and when the texts beside it were changed', async () => {
      const { f, gw } = await gatewayWith(forbidding('probe__other'));
      try {
        await echo(gw);
      } finally {
        await gw.close();
      }
      const none = await runCli(['audit', 'policy', '--config', f.configPath, '--hash', 'sha256:00']);
      assert.equal(none.code, 1);
      assert.match(none.stderr, /\[ERR_NOT_FOUND\] the log records no policy set sha256:00/);
      const blobs = tableOf(kind, f.setup, 'blobs');
      const texts = bytesLiteral(kind, Buffer.from('{"live":{"files":[],"policies":[]}}'));
      await attack(kind, f.setup, [`UPDATE ${blobs} SET data = ${texts}`]);
      const changed = await runCli(['audit', 'policy', '--config', f.configPath]);
      assert.equal(changed.code, 1);
      assert.match(
        changed.stderr,
        /\[ERR_AUDIT_TAMPERED\] entry \d+: the policy texts [0-9a-f]{64} were changed/,
      );
      const verified = await runCli(['audit', 'verify', '--config', f.configPath]);
      assert.equal(verified.code, 1);
      assert.match(verified.stdout, /payload-changed/);
    });
  });
}
