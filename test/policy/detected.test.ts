import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MemorySessionFacts } from '../../src/policy/facts/session-facts.ts';
import { PolicyService } from '../../src/policy/service.ts';
import { evaluateCase } from '../../src/policy/testing/cases.ts';
import { type DetectedTypes, NOTHING_DETECTED } from '../../src/protect/service.ts';
import { alice, FROZEN_NOW, FS_TOOLS, log, policyConfig } from './fixtures.ts';

const AWS_KEY = 'AKIAQYLPMN5HFIQR7XYA';
const NO_SECRETS = `@id("all") permit(principal, action, resource);
@id("no-secrets-to-writes-or-egress")
forbid(principal, action in Action::"tools/call", resource is Tool)
when { !context.detected.secrets.isEmpty() && (resource.tier == "write" || resource.egress) };`;

function serviceWith(text: string, detect?: (args: unknown) => DetectedTypes) {
  const dir = mkdtempSync(join(tmpdir(), 'pc-detected-'));
  writeFileSync(join(dir, 'p.cedar'), text);
  const calls: unknown[] = [];
  const svc = new PolicyService(policyConfig({ files: ['p.cedar'], trustAnnotations: ['fs'] }), dir, {
    onSetChange: () => {},
    log,
    now: () => FROZEN_NOW,
    ...(detect
      ? {
          detect: (args) => {
            calls.push(args);
            return detect(args);
          },
        }
      : {}),
  });
  svc.catalog.updateTools('fs', FS_TOOLS);
  return { svc, calls };
}

const write = (content: string) => ({
  principal: alice,
  tool: 'fs__write_file',
  arguments: { path: '/srv/a', content },
  reason: 'ticket 42',
});

describe('context.detected: what the detectors find in the arguments', () => {
  it('denies a write that carries a secret, and only that write, with the built-in detectors', () => {
    const { svc } = serviceWith(NO_SECRETS);
    const denied = evaluateCase(svc, write(`key ${AWS_KEY}`));
    assert.equal(denied.kind === 'decision' && denied.decision.effect, 'deny');
    assert.deepEqual(denied.kind === 'decision' && denied.decision.determiningPolicies, [
      'no-secrets-to-writes-or-egress',
    ]);
    // A list cannot know the arguments: the tool stays visible, the denial is a denial, not "unknown".
    assert.equal(denied.kind === 'decision' && denied.visible, true);
    const allowed = evaluateCase(svc, write('plain words and jane@example.com'));
    assert.equal(allowed.kind === 'decision' && allowed.decision.effect, 'allow');
    const read = evaluateCase(svc, {
      ...write(''),
      tool: 'fs__read_text_file',
      arguments: { path: AWS_KEY },
    });
    assert.equal(read.kind === 'decision' && read.decision.effect, 'allow');
  });

  it('treats arguments that could not be scanned wholly as carrying a secret', () => {
    const { svc } = serviceWith(NO_SECRETS, () => ({ secrets: ['unscanned'], pii: [] }));
    const out = evaluateCase(svc, write('anything'));
    assert.equal(out.kind === 'decision' && out.decision.effect, 'deny');
  });

  it('scans nothing when no policy of the set reads context.detected', () => {
    const { svc, calls } = serviceWith('@id("all") permit(principal, action, resource);', () => {
      throw new Error('scanned');
    });
    assert.equal(svc.detect({ content: AWS_KEY }), NOTHING_DETECTED);
    const out = evaluateCase(svc, write(AWS_KEY));
    assert.equal(out.kind === 'decision' && out.decision.effect, 'allow');
    assert.deepEqual(calls, []);
  });

  it('passes the detected types to Cedar as sets a policy can test one by one', () => {
    const { svc } = serviceWith(
      `@id("all") permit(principal, action, resource);
@id("no-cards") forbid(principal, action, resource) when { context.detected.pii.contains("payment-card") };`,
    );
    const card = evaluateCase(svc, write('card 4111 1111 1111 1111'));
    assert.equal(card.kind === 'decision' && card.decision.effect, 'deny');
    const bad = evaluateCase(svc, write('card 4111 1111 1111 1112'));
    assert.equal(bad.kind === 'decision' && bad.decision.effect, 'allow', 'fails Luhn: not a card');
  });
});

describe('a sensitive read marked from a result', () => {
  it('holds for the caller in every session until the history is over, even when the history is full', () => {
    const facts = new MemorySessionFacts({ historyMs: 60_000, maxPrincipals: 1 });
    facts.record('someone-else', 'fs__read_text_file', FROZEN_NOW, { sensitive: false, tool: true });
    facts.markSensitive(alice.id, FROZEN_NOW);
    assert.equal(facts.snapshot(alice.id, 'fs__send_report', FROZEN_NOW + 59_999).sensitiveRead, true);
    assert.equal(facts.snapshot(alice.id, 'fs__send_report', FROZEN_NOW + 60_000).sensitiveRead, false);
    assert.equal(facts.snapshot('someone-else', 'fs__send_report', FROZEN_NOW).sensitiveRead, false);
  });
});
