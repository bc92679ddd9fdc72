import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Logger } from '../../src/observability/log.ts';
import { PolicyService } from '../../src/policy/service.ts';
import { FS_TOOLS, facts, policyConfig } from './fixtures.ts';

const PERMIT = '@id("p") permit(principal, action, resource);';
const FORBID = '@id("f") forbid(principal, action, resource);';
const INVALID = '@id("bad") permit(principal, action, resource) when { principal.nope };';

/** A logger that hands out a promise for the next time a message is logged. */
function signallingLog() {
  const waiting = new Map<string, (() => void)[]>();
  const emit = (msg: string) => {
    for (const resolve of waiting.get(msg) ?? []) resolve();
    waiting.delete(msg);
  };
  const log: Logger = { debug: emit, info: emit, warn: emit, error: emit };
  const next = (msg: string) =>
    new Promise<void>((resolve) => waiting.set(msg, [...(waiting.get(msg) ?? []), resolve]));
  return { log, next };
}

/** The watchers are unref'd (they never hold a gateway open): keep the test's event loop alive while it waits. */
async function awaitAlive<T>(p: Promise<T>): Promise<T> {
  const keepAlive = setInterval(() => {}, 1000);
  return p.finally(() => clearInterval(keepAlive));
}

function watched(dir: string, file: string) {
  const { log, next } = signallingLog();
  const svc = new PolicyService(policyConfig({ files: [file], watch: true }), dir, {
    onSetChange: () => {},
    log,
  });
  svc.catalog.updateTools('fs', FS_TOOLS);
  svc.watch();
  const effect = () => svc.decide(facts(svc.catalog, 'fs__read_text_file', { input: { path: '/a' } })).effect;
  return { svc, next, effect };
}

/** An editor's atomic save: write a temporary file beside it, rename it over. */
function saveByRename(path: string, text: string, n: number): void {
  const tmp = `${path}.tmp-${n}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/** Generous: only a broken watch comes near it (the reload itself takes milliseconds). */
const GIVE_UP = { timeout: 20_000 };

describe('policy hot reload', () => {
  it('reloads after every save made by rename over the file, not only the first', GIVE_UP, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-watch-rename-'));
    writeFileSync(join(dir, 'p.cedar'), PERMIT);
    const { svc, next, effect } = watched(dir, 'p.cedar');
    try {
      assert.equal(effect(), 'allow');
      let reloaded = next('policy reloaded');
      saveByRename(join(dir, 'p.cedar'), FORBID, 1);
      await awaitAlive(reloaded);
      assert.equal(effect(), 'deny');
      reloaded = next('policy reloaded');
      saveByRename(join(dir, 'p.cedar'), PERMIT, 2);
      await awaitAlive(reloaded);
      assert.equal(effect(), 'allow');
    } finally {
      svc.close();
    }
  });

  it(
    'reloads when a Kubernetes ConfigMap swaps its ..data symlink to a new directory, again and again',
    GIVE_UP,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'pc-watch-k8s-'));
      const version = (n: number, text: string) => {
        mkdirSync(join(dir, `..v${n}`));
        writeFileSync(join(dir, `..v${n}`, 'p.cedar'), text);
      };
      // The kubelet's layout: p.cedar -> ..data/p.cedar, ..data -> ..v1; an update swaps ..data by rename.
      const swapTo = (n: number) => {
        symlinkSync(`..v${n}`, join(dir, '..data_tmp'));
        renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
      };
      version(1, PERMIT);
      symlinkSync('..v1', join(dir, '..data'));
      symlinkSync(join('..data', 'p.cedar'), join(dir, 'p.cedar'));
      const { svc, next, effect } = watched(dir, 'p.cedar');
      try {
        assert.equal(effect(), 'allow');
        let reloaded = next('policy reloaded');
        version(2, FORBID);
        swapTo(2);
        await awaitAlive(reloaded);
        assert.equal(effect(), 'deny');
        reloaded = next('policy reloaded');
        version(3, PERMIT);
        swapTo(3);
        await awaitAlive(reloaded);
        assert.equal(effect(), 'allow');
      } finally {
        svc.close();
      }
    },
  );

  it(
    'follows a symlinked file into its target directory and reloads on every save of the target by rename',
    GIVE_UP,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'pc-watch-link-'));
      const elsewhere = mkdtempSync(join(tmpdir(), 'pc-watch-target-'));
      writeFileSync(join(elsewhere, 'real.cedar'), PERMIT);
      symlinkSync(join(elsewhere, 'real.cedar'), join(dir, 'p.cedar'));
      const { svc, next, effect } = watched(dir, 'p.cedar');
      try {
        let reloaded = next('policy reloaded');
        saveByRename(join(elsewhere, 'real.cedar'), FORBID, 1);
        await awaitAlive(reloaded);
        assert.equal(effect(), 'deny');
        reloaded = next('policy reloaded');
        saveByRename(join(elsewhere, 'real.cedar'), PERMIT, 2);
        await awaitAlive(reloaded);
        assert.equal(effect(), 'allow');
      } finally {
        svc.close();
      }
    },
  );

  it('logs a refused reload, keeps the old set, and still reloads the next good save', GIVE_UP, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-watch-refused-'));
    writeFileSync(join(dir, 'p.cedar'), PERMIT);
    const { svc, next, effect } = watched(dir, 'p.cedar');
    try {
      const refused = next('policy reload refused; the previous set stays live');
      saveByRename(join(dir, 'p.cedar'), INVALID, 1);
      await awaitAlive(refused);
      assert.equal(effect(), 'allow');
      const reloaded = next('policy reloaded');
      saveByRename(join(dir, 'p.cedar'), FORBID, 2);
      await awaitAlive(reloaded);
      assert.equal(effect(), 'deny');
    } finally {
      svc.close();
    }
  });
});
