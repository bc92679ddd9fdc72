import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { authorizeStage } from '../../src/pipeline/stages/authorize.ts';
import { toCedar } from '../../src/policy/facts/request.ts';
import { MAX_TOOLS_PER_PRINCIPAL } from '../../src/policy/facts/session-facts.ts';
import { Catalog, tierOf } from '../../src/policy/model/catalog.ts';
import { cedarTypeOf, toCedarValue } from '../../src/policy/model/cedar-types.ts';
import { checkAgainstSchema } from '../../src/policy/model/json-schema.ts';
import { boundsProblem } from '../../src/policy/model/limits.ts';
import { PolicyService } from '../../src/policy/service.ts';
import { NOTHING_DETECTED } from '../../src/protect/service.ts';
import { noBreakGlass } from '../breakglass/fixtures.ts';
import { ROOT, testCallContext } from '../helpers.ts';
import { alice, catalogWith, engineFor, FROZEN_NOW, FS_TOOLS, facts, log, policyConfig } from './fixtures.ts';

describe('typed argument conditions', () => {
  it('maps string, integer, boolean, number, nested objects and arrays to Cedar types', () => {
    const t = cedarTypeOf({
      type: 'object',
      properties: {
        s: { type: 'string' },
        i: { type: 'integer' },
        b: { type: 'boolean' },
        n: { type: 'number' },
        o: { type: 'object', properties: { x: { type: 'string' } }, required: ['x'] },
        a: { type: 'array', items: { type: 'integer' } },
      },
    });
    assert.deepEqual(t, {
      type: 'Record',
      attributes: {
        s: { type: 'String', required: false },
        i: { type: 'Long', required: false },
        b: { type: 'Boolean', required: false },
        n: { type: 'Extension', name: 'decimal', required: false },
        o: { type: 'Record', attributes: { x: { type: 'String', required: true } }, required: false },
        a: { type: 'Set', element: { type: 'Long' }, required: false },
      },
    });
  });

  it('refuses a number that Cedar decimal cannot hold exactly rather than rounding it', () => {
    assert.deepEqual(toCedarValue({ type: 'Extension', name: 'decimal' }, 1.5), {
      __extn: { fn: 'decimal', arg: '1.5000' },
    });
    assert.throws(() => toCedarValue({ type: 'Extension', name: 'decimal' }, 1.23456));
  });

  it('refuses at load a policy naming a missing argument, with the exact error', () => {
    const problems = engineFor(
      'permit(principal, action == Action::"tools/call:fs__read_text_file", resource) when { context.input.paht == "x" };',
    ).validate();
    assert.match(
      problems.join(),
      /attribute `input\.paht` in context for Action::"tools\/call:fs__read_text_file" not found/,
    );
    assert.match(problems.join(), /did you mean `path`\?/);
  });

  it('accepts a typed argument condition scoped to the tool', () => {
    const engine = engineFor(
      '@id("p") permit(principal, action == Action::"tools/call:fs__send_report", resource) when { context.input has ratio && context.input.ratio.lessThan(decimal("0.5")) && context.input has tags && context.input.tags.contains("x") };',
    );
    assert.deepEqual(engine.validate(), []);
  });

  it('re-validates when a tool schema changes', () => {
    const catalog = catalogWith();
    const engine = engineFor(
      '@id("p") permit(principal, action == Action::"tools/call:fs__read_text_file", resource) when { context.input.path like "/srv/*" };',
      catalog,
    );
    assert.deepEqual(engine.validate(), []);
    catalog.updateTools('fs', [
      { ...FS_TOOLS[0]!, inputSchema: { type: 'object', properties: { file: { type: 'string' } } } },
    ]);
    assert.match(engine.validate().join(), /input\.path/);
  });

  it('treats a policy naming a tool no upstream lists as dead, not as an error', () => {
    assert.deepEqual(
      engineFor('permit(principal, action == Action::"tools/call:gone__tool", resource);').validate(),
      [],
    );
  });
});

describe('argument checks before policy', () => {
  const schema = FS_TOOLS[0]!.inputSchema;
  it('names the argument that does not match, never its value', () => {
    assert.deepEqual(checkAgainstSchema(schema, { path: 42 }), ['argument `path` must be of type string']);
    assert.deepEqual(checkAgainstSchema(schema, {}), ['argument `path` is required']);
  });
  it('bounds depth and size', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 40; i++) deep = { d: deep };
    assert.match(boundsProblem(deep, { maxArgumentBytes: 1000, maxDepth: 32 })!, /nested deeper/);
    assert.match(boundsProblem({ s: 'x'.repeat(2000) }, { maxArgumentBytes: 1000, maxDepth: 32 })!, /larger/);
  });
  it('refuses non-ASCII names and names that collide after normalisation', () => {
    const catalog = new Catalog(policyConfig());
    catalog.updateTools('fs', [
      { name: 'fs__réad' },
      { name: 'fs__a-b' },
      { name: 'fs__a_b' },
      { name: 'fs__ok' },
    ]);
    assert.equal(catalog.tool('fs__réad'), undefined);
    assert.equal(catalog.tool('fs__a-b'), undefined);
    assert.equal(catalog.tool('fs__a_b'), undefined);
    assert.equal(catalog.tool('fs__ok')?.name, 'fs__ok');
  });
});

describe('tiers', () => {
  const cfg = policyConfig({ tiers: { fs__x: 'read' } });
  it('takes config first, and lets annotations only make it stricter', () => {
    assert.equal(tierOf('fs__x', cfg, false, {}), 'read');
    assert.equal(tierOf('fs__x', cfg, false, { destructiveHint: true }), 'write');
  });
  it('lowers to read on readOnlyHint only for a trusted upstream, else write', () => {
    assert.equal(tierOf('fs__y', cfg, true, { readOnlyHint: true }), 'read');
    assert.equal(tierOf('fs__y', cfg, false, { readOnlyHint: true }), 'write');
    assert.equal(tierOf('fs__y', cfg, true, {}), 'write');
  });
});

function serviceWith(text: string, extra: Record<string, unknown> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'pc-policy-'));
  writeFileSync(join(dir, 'p.cedar'), text);
  let now = FROZEN_NOW;
  const svc = new PolicyService(
    policyConfig({ files: ['p.cedar'], trustAnnotations: ['fs'], ...extra }),
    dir,
    {
      onSetChange: () => {},
      log,
      now: () => now,
    },
  );
  svc.catalog.updateTools('fs', FS_TOOLS);
  return { svc, dir, setNow: (t: number) => (now = t) };
}

describe('session-aware rules', () => {
  it('denies a write-type or send-type tool after a sensitive read by the same caller, in any session (exfiltration)', () => {
    const { svc } = serviceWith(
      '@id("p") permit(principal, action, resource);\n@id("x") forbid(principal, action in Action::"tools/call", resource is Tool) when { context.session.sensitiveRead && (resource.tier == "write" || resource.egress) };',
      { sensitive: [{ tool: 'fs__read_*', argument: 'path', pattern: '*secret*' }] },
    );
    const read = svc.catalog.tool('fs__read_text_file')!;
    assert.equal(svc.isSensitive({ kind: 'tool', tool: read }, { path: '/srv/secret.txt' }), true);
    svc.facts.record(alice.id, read.name, FROZEN_NOW, { sensitive: true, tool: true });
    const snap = svc.facts.snapshot(alice.id, 'fs__send_report', FROZEN_NOW);
    assert.equal(
      svc.decide(facts(svc.catalog, 'fs__send_report', { session: snap, input: { to: 'x' } })).effect,
      'deny',
    );
    const bob = { ...alice, id: 'jwt:bob', user: 'bob' };
    const other = svc.facts.snapshot(bob.id, 'fs__send_report', FROZEN_NOW);
    assert.equal(
      svc.decide(
        facts(svc.catalog, 'fs__send_report', { principal: bob, session: other, input: { to: 'x' } }),
      ).effect,
      'allow',
    );
  });

  it('allows at most N calls per minute per principal and tool', () => {
    const { svc } = serviceWith(
      '@id("p") permit(principal, action, resource);\n@id("rate") forbid(principal, action, resource) when { context.session.callsLastMinute >= 2 };',
    );
    const at = (t: number) => svc.facts.snapshot(alice.id, 'fs__read_text_file', t);
    const decide = (t: number) =>
      svc.decide(facts(svc.catalog, 'fs__read_text_file', { session: at(t), input: { path: '/a' } })).effect;
    svc.facts.record(alice.id, 'fs__read_text_file', FROZEN_NOW, { sensitive: false, tool: true });
    assert.equal(decide(FROZEN_NOW), 'allow');
    svc.facts.record(alice.id, 'fs__read_text_file', FROZEN_NOW + 1000, { sensitive: false, tool: true });
    assert.equal(decide(FROZEN_NOW + 2000), 'deny');
    assert.equal(decide(FROZEN_NOW + 61_000), 'allow');
  });

  it('refuses a tool new to a caller whose tool history is full, so decoy calls cannot flush it', async () => {
    const { svc } = serviceWith('@id("p") permit(principal, action, resource);');
    for (let i = 0; i < MAX_TOOLS_PER_PRINCIPAL; i++)
      svc.facts.record(alice.id, `decoy_${i}`, FROZEN_NOW, { sensitive: false, tool: true });
    const stage = authorizeStage(svc, new Set(), noBreakGlass());
    const callTo = (tool: string, principal = alice) => {
      const ctx = testCallContext({
        principal,
        sessionKey: 's',
        request: {
          jsonrpc: '2.0',
          id: 1,
          method: 'tools/call',
          params: { name: tool, arguments: { path: '/a' } },
        },
      });
      ctx.route = { kind: 'upstream', upstream: 'fs' } as never;
      const target = { kind: 'tool' as const, tool: svc.catalog.tool(tool)! };
      ctx.callInput = {
        target,
        input: { path: '/a' },
        args: { path: '/a' },
        detected: NOTHING_DETECTED,
        reason: 'r',
        reasonSource: 'declared',
      };
      return ctx;
    };
    const fresh = callTo('fs__read_text_file');
    await assert.rejects(async () => stage.run(fresh), { code: 'ERR_SESSION_HISTORY_FULL' });
    assert.deepEqual(fresh.decision?.determiningPolicies, ['builtin:session-history-full']);
    const elsewhere = { ...callTo('fs__read_text_file', { ...alice, id: 'jwt:bob', user: 'bob' }) };
    elsewhere.callInput = fresh.callInput!;
    await stage.run(elsewhere);
    assert.equal(elsewhere.decision?.effect, 'allow', 'another caller is not affected');
  });

  it('refuses a new caller when the history holds as many callers as it may, all still remembered', async () => {
    const { svc, setNow } = serviceWith('@id("p") permit(principal, action, resource);', {
      session: { historyMs: 60_000, maxPrincipals: 1 },
    });
    const stage = authorizeStage(svc, new Set(), noBreakGlass());
    const callBy = (principal: typeof alice) => {
      const ctx = testCallContext({
        principal,
        request: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'fs__read_text_file' } },
      });
      ctx.route = { kind: 'upstream', upstream: 'fs' } as never;
      const target = { kind: 'tool' as const, tool: svc.catalog.tool('fs__read_text_file')! };
      ctx.callInput = {
        target,
        input: { path: '/a' },
        args: {},
        detected: NOTHING_DETECTED,
        reason: 'r',
        reasonSource: 'declared',
      };
      return ctx;
    };
    await stage.run(callBy(alice));
    const bob = callBy({ ...alice, id: 'jwt:bob', user: 'bob' });
    await assert.rejects(async () => stage.run(bob), { code: 'ERR_CALLER_HISTORY_FULL' });
    assert.deepEqual(bob.decision?.determiningPolicies, ['builtin:caller-history-full']);
    setNow(FROZEN_NOW + 120_000);
    const later = callBy({ ...alice, id: 'jwt:bob', user: 'bob' });
    await stage.run(later);
    assert.equal(later.decision?.effect, 'allow', 'admitted once the other caller is over');
  });

  it('keeps resources and prompts out of the tool history, so reading many files never locks tools out', () => {
    const { svc } = serviceWith('@id("p") permit(principal, action, resource);');
    for (let i = 0; i < MAX_TOOLS_PER_PRINCIPAL; i++)
      svc.facts.record(alice.id, `file:///srv/${i}.txt`, FROZEN_NOW, { sensitive: false, tool: false });
    const snap = svc.facts.snapshot(alice.id, 'fs__read_text_file', FROZEN_NOW);
    assert.equal(snap.toolsFull, false);
    assert.deepEqual(snap.toolsUsed, []);
  });

  it('denies calls outside the configured hours (policies/office-hours.cedar), on the injected clock', () => {
    const hours = readFileSync(join(ROOT, 'policies/office-hours.cedar'), 'utf8');
    const { svc } = serviceWith(`@id("p") permit(principal, action, resource);\n${hours}`, {
      utcOffsetMinutes: 60,
    });
    const at = (now: number) =>
      svc.decide({
        ...facts(svc.catalog, 'fs__read_text_file', { input: { path: '/a' } }),
        now,
        utcOffsetMinutes: 60,
      }).effect;
    assert.equal(at(FROZEN_NOW), 'allow'); // Tuesday 11:00 local
    assert.equal(at(Date.UTC(2026, 10, 24, 17, 30)), 'deny'); // 18:30 local
    assert.equal(at(Date.UTC(2026, 10, 22, 10, 0)), 'deny'); // a Sunday
  });
});

describe('discovery, shadow and reload', () => {
  it('hides only what the caller can never use, whatever arguments or reason it sends', () => {
    const { svc } = serviceWith(
      '@id("r") permit(principal, action == Action::"tools/call:fs__read_text_file", resource) when { context.reason != "" && context.input.path like "/srv/*" };',
    );
    const items = FS_TOOLS.map((item) => ({ item, upstream: 'fs' }));
    const shown = svc.filterList(svc.live, alice, 'tools/list', items).map((t) => t.name);
    assert.deepEqual(shown, ['fs__read_text_file']);
  });

  it('counts shadow differences without enforcing them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-shadow-'));
    writeFileSync(join(dir, 'live.cedar'), '@id("p") permit(principal, action, resource);');
    writeFileSync(join(dir, 'cand.cedar'), '@id("none") forbid(principal, action, resource);');
    const svc = new PolicyService(policyConfig({ files: ['live.cedar'], shadow: ['cand.cedar'] }), dir, {
      onSetChange: () => {},
      log,
    });
    svc.catalog.updateTools('fs', FS_TOOLS);
    const d = svc.decide(facts(svc.catalog, 'fs__read_text_file', { input: { path: '/a' } }));
    assert.equal(d.effect, 'allow');
    assert.deepEqual(svc.shadowStats, { evaluated: 1, differences: 1 });
  });

  it('keeps the old set and says why when a reload fails validation', () => {
    const { svc, dir } = serviceWith('@id("p") permit(principal, action, resource);');
    const before = svc.live.source.hash;
    writeFileSync(
      join(dir, 'p.cedar'),
      '@id("q") permit(principal, action, resource) when { principal.nope };',
    );
    const result = svc.reload();
    assert.equal(result.ok, false);
    assert.match(result.ok ? '' : result.problems.join(), /nope/);
    assert.equal(svc.live.source.hash, before);
    writeFileSync(join(dir, 'p.cedar'), '@id("q") forbid(principal, action, resource);');
    assert.equal(svc.reload().ok, true);
    assert.notEqual(svc.live.source.hash, before);
    assert.equal(
      svc.decide(facts(svc.catalog, 'fs__read_text_file', { input: { path: '/a' } })).effect,
      'deny',
    );
  });

  it('maps the principal, its groups and claims into the entity Cedar sees', () => {
    const engine = engineFor(
      '@id("g") permit(principal in Group::"engineers", action, resource) when { principal.hasTag("dept") && principal.getTag("dept") == "platform" && principal.scopes.contains("tools") && context.network.address.isInRange(ip("10.0.0.0/8")) };',
    );
    assert.equal(
      engine.decide(toCedar(facts(catalogWith(), 'fs__read_text_file', { input: { path: '/a' } }))).effect,
      'allow',
    );
  });
});

describe('hot reload', () => {
  it('swaps in an edited policy file without a restart, and keeps serving decisions meanwhile', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-watch-'));
    writeFileSync(join(dir, 'p.cedar'), '@id("p") permit(principal, action, resource);');
    let reloaded: () => void = () => {};
    const done = new Promise<void>((r) => {
      reloaded = r;
    });
    const svc = new PolicyService(policyConfig({ files: ['p.cedar'], watch: true }), dir, {
      onSetChange: () => {},
      log: { ...log, info: (msg: string) => msg === 'policy reloaded' && reloaded() },
    });
    svc.catalog.updateTools('fs', FS_TOOLS);
    svc.watch();
    try {
      const call = () =>
        svc.decide(facts(svc.catalog, 'fs__read_text_file', { input: { path: '/a' } })).effect;
      assert.equal(call(), 'allow');
      writeFileSync(join(dir, 'p.cedar'), '@id("f") forbid(principal, action, resource);');
      // The watcher is unref'd (it never holds a gateway open): keep this test's event loop alive meanwhile.
      const keepAlive = setInterval(() => {}, 1000);
      await done.finally(() => clearInterval(keepAlive));
      assert.equal(call(), 'deny');
    } finally {
      svc.close();
    }
  });
});
