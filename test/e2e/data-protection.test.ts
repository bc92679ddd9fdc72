import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/client';
import type { RunningGateway } from '../../src/server.ts';
import { LEAKS } from '../fixtures/leaks.ts';
import { failsWith, httpClient, NODE, ROOT, startTestGateway, textOf } from '../helpers.ts';

const LEAKY = { transport: 'stdio', command: NODE, args: [join(ROOT, 'test/fixtures/leaky-server.ts')] };

/**
 * The shipped default set (its forbids: secrets to writes or egress, egress
 * after a sensitive read) plus permits for this test's unidentified caller,
 * the read-sensitive one with the `mask` obligation as in default.cedar.
 */
const TEST_PERMITS = `
@id("test-reads") permit(principal, action in Action::"tools/call", resource is Tool)
when { resource.tier == "read" };
@id("test-sensitive-reads") @obligation("mask") permit(principal, action in Action::"tools/call", resource is Tool)
when { resource.tier == "read-sensitive" };
@id("test-writes") permit(principal, action in Action::"tools/call", resource is Tool)
when { resource.tier == "write" };
@id("test-resources-and-prompts") permit(principal, action in [Action::"resources/read", Action::"prompts/get"], resource);
`;

const HASH_KEY_ENV = 'PC_TEST_MASK_HASH_KEY';
process.env[HASH_KEY_ENV] = 'a test key of at least sixteen bytes';

interface Setup {
  running: RunningGateway;
  url: string;
  auditPath: string;
}

const running: RunningGateway[] = [];
const clients: Client[] = [];
after(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await Promise.all(running.map((r) => r.close()));
});

async function gateway(protect: Record<string, unknown> = {}): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'pc-protect-'));
  const permits = join(dir, 'test-permits.cedar');
  writeFileSync(permits, TEST_PERMITS);
  const auditPath = join(dir, 'audit.db');
  const gw = await startTestGateway({
    upstreams: { leak: LEAKY },
    policy: {
      files: [join(ROOT, 'policies/default.cedar'), permits],
      tiers: {
        leak__read_record: 'read-sensitive',
        leak__read_huge: 'read-sensitive',
        leak__read_plain: 'read',
      },
    },
    protect,
    state: { store: 'sqlite', path: join(dir, 'state.db') },
    audit: { path: auditPath },
  });
  running.push(gw);
  return { running: gw, url: gw.listener.url, auditPath };
}

async function client(s: Setup): Promise<Client> {
  const c = await httpClient(s.url, 'legacy');
  clients.push(c);
  return c;
}

/** Every audit leaf, parsed, in log order. */
function auditLeaves(s: Setup): Record<string, unknown>[] {
  const db = new DatabaseSync(s.auditPath, { readOnly: true });
  try {
    const rows = db.prepare('SELECT leaf FROM audit_entries ORDER BY idx').all();
    return rows.map((r) => JSON.parse(Buffer.from((r as { leaf: Uint8Array }).leaf).toString('utf8')));
  } finally {
    db.close();
  }
}

const records = (s: Setup, type: string, tool: string) =>
  auditLeaves(s).filter((r) => r.type === type && r.tool === tool);

/** Which of the values show in `text` (a PEM key by a line of its body, whatever escapes its newlines went through). */
const leaked = (text: string): string[] =>
  Object.entries(LEAKS)
    .filter(([name, value]) => text.includes(name === 'pem' ? value.split('\n')[1]! : value))
    .map(([name]) => name);

const ALL_TYPES = ['aws-access-token', 'email', 'github-pat', 'iban', 'payment-card', 'private-key'];
const call = (c: Client, name: string, text?: string) =>
  c.callTool({ name, arguments: text === undefined ? {} : { text } });

describe('a read-sensitive tool whose decision carries the mask obligation', () => {
  it('answers with typed placeholders in the text and in structuredContent, records type counts but no value, and marks its caller for every session', async () => {
    const s = await gateway();
    const c = await client(s);
    const result = await call(c, 'leak__read_record');
    const relayed = JSON.stringify(result);
    assert.deepEqual(leaked(relayed), []);
    for (const type of ALL_TYPES) assert.ok(textOf(result).includes(`[REDACTED:${type}]`), type);
    const structured = result.structuredContent as Record<string, string>;
    assert.equal(structured.owner, 'Jane');
    assert.equal(structured.aws, '[REDACTED:aws-access-token]');
    assert.equal(structured.pem, '[REDACTED:private-key]');

    const [outcome] = records(s, 'outcome', 'leak__read_record');
    const masked = outcome!.masked as { mode: string; outcome: string; types: Record<string, number> };
    assert.equal(masked.mode, 'redact');
    assert.equal(masked.outcome, 'masked');
    assert.deepEqual(Object.keys(masked.types).sort(), ALL_TYPES);
    assert.equal(masked.types.email, 2, 'one in the text, one in structuredContent');
    assert.deepEqual(leaked(JSON.stringify(auditLeaves(s))), []);

    // Another session of the same caller: nothing that sends or writes is even shown.
    const other = await client(s);
    await assert.rejects(call(other, 'leak__send_message', 'hi'), failsWith(-32602, /Unknown tool/));
    const denied = records(s, 'decision', 'leak__send_message').at(-1)!;
    assert.deepEqual((denied.decision as { determiningPolicies: string[] }).determiningPolicies, [
      'no-egress-after-sensitive-read',
    ]);
  });

  it('leaves a clean result as it is and records no masking', async () => {
    const s = await gateway();
    const c = await client(s);
    assert.equal(textOf(await call(c, 'leak__read_plain')), 'sunny, 21 degrees');
    const [outcome] = records(s, 'outcome', 'leak__read_plain');
    assert.equal(outcome!.masked, undefined);
  });
});

describe('masking modes chosen in config', () => {
  it('block withholds the whole result; a result over the scan bound is withheld too; neither is relayed', async () => {
    const s = await gateway({ limits: { maxChars: 4096 }, mask: { tools: { leak__read_record: 'block' } } });
    const c = await client(s);
    await assert.rejects(
      call(c, 'leak__read_record'),
      failsWith(-32004, /Result withheld: it holds sensitive data/),
    );
    await assert.rejects(
      call(c, 'leak__read_huge'),
      failsWith(-32004, /Result withheld: it could not be checked for sensitive data/),
    );
    const [blocked] = records(s, 'outcome', 'leak__read_record');
    assert.equal(blocked!.error, 'ERR_RESULT_WITHHELD');
    assert.equal(blocked!.resultHash, null);
    assert.deepEqual(blocked!.masked, {
      mode: 'block',
      outcome: 'withheld',
      types: (blocked!.masked as { types: Record<string, number> }).types,
    });
    assert.deepEqual(
      Object.keys((blocked!.masked as { types: Record<string, number> }).types).sort(),
      ALL_TYPES,
    );
    const [bound] = records(s, 'outcome', 'leak__read_huge');
    assert.equal(bound!.error, 'ERR_RESULT_WITHHELD');
    assert.deepEqual(bound!.masked, { mode: 'redact', outcome: 'withheld', types: {} });
  });

  it('partial keeps the last four characters; hash gives equal values equal keyed hashes across methods', async () => {
    const s = await gateway({
      mask: {
        tools: { leak__read_record: 'partial' },
        upstreams: { leak: 'hash' },
        hashKey: `env:${HASH_KEY_ENV}`,
      },
    });
    const c = await client(s);
    const partial = textOf(await call(c, 'leak__read_record'));
    assert.ok(partial.includes('[REDACTED:payment-card:…1111]'), partial);
    assert.ok(partial.includes('[REDACTED:email:….com]'), partial);
    assert.deepEqual(leaked(partial), []);

    const prompt = await c.getPrompt({ name: 'leak__record' });
    const promptText = JSON.stringify(prompt);
    const resource = JSON.stringify(await c.readResource({ uri: 'leak://record' }));
    assert.deepEqual(leaked(promptText + resource), []);
    const emailHash = /\[HASHED:email:([0-9a-f]{16})\]/;
    const fromPrompt = emailHash.exec(promptText)?.[1];
    assert.ok(fromPrompt, promptText);
    assert.equal(emailHash.exec(resource)?.[1], fromPrompt);
  });
});

describe('a result with findings that nobody asked to mask', () => {
  it('is relayed as it is, recorded as unmasked with its types, and marks its caller: a write from another session is refused', async () => {
    const s = await gateway();
    const c = await client(s);
    const before = await client(s);
    assert.equal(textOf(await call(before, 'leak__write_note', 'plain words')), 'written');

    const read = await c.readResource({ uri: 'leak://record' });
    assert.deepEqual(leaked(JSON.stringify(read)).sort(), Object.keys(LEAKS).sort());
    const outcome = auditLeaves(s).find((r) => r.type === 'outcome' && r.method === 'resources/read');
    const masked = outcome!.masked as { mode: null; outcome: string; types: Record<string, number> };
    assert.equal(masked.mode, null);
    assert.equal(masked.outcome, 'unmasked');
    assert.deepEqual(Object.keys(masked.types).sort(), ALL_TYPES);

    await assert.rejects(call(before, 'leak__write_note', 'plain words'), failsWith(-32602, /Unknown tool/));
  });
});

describe('a secret in the arguments of a tool that writes or sends', () => {
  it('is denied by policy, visibly (the tool stays listed: a list cannot know the arguments), and recorded with the types found, not the values', async () => {
    const s = await gateway();
    const c = await client(s);
    assert.equal(textOf(await call(c, 'leak__write_note', 'mail jane.doe@example.com')), 'written');
    await assert.rejects(
      call(c, 'leak__write_note', `AWS_ACCESS_KEY_ID=${LEAKS.aws}`),
      failsWith(-32004, /Denied by policy/),
    );
    await assert.rejects(
      call(c, 'leak__send_message', `token ${LEAKS.github}`),
      failsWith(-32004, /Denied by policy/),
    );
    const names = (await c.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('leak__write_note') && names.includes('leak__send_message'));
    // A read may carry one: only writes and egress are refused.
    assert.equal(textOf(await call(c, 'leak__read_plain', LEAKS.aws)), 'sunny, 21 degrees');

    const [allowed, denied] = records(s, 'decision', 'leak__write_note');
    assert.deepEqual(allowed!.detected, { secrets: [], pii: ['email'] });
    assert.deepEqual(denied!.detected, { secrets: ['aws-access-token'], pii: [] });
    assert.deepEqual((denied!.decision as { determiningPolicies: string[] }).determiningPolicies, [
      'no-secrets-to-writes-or-egress',
    ]);
    const [sent] = records(s, 'decision', 'leak__send_message');
    assert.deepEqual(sent!.detected, { secrets: ['github-pat'], pii: [] });
    assert.deepEqual(leaked(JSON.stringify(auditLeaves(s))), []);
  });
});
