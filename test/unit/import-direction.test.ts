import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../helpers.ts';
import { importCycles, importsOf, layerOf, readImportGraph, upwardImports } from '../import-graph.ts';

/**
 * Upward imports tolerated, each `from -> to`: none. Kept as a list so a
 * deliberate exception is one reviewed line; an entry that no longer exists fails.
 */
const KNOWN_UPWARD: string[] = [];

/** Import cycles tolerated, each the ring's files sorted and joined by ` <-> `: none. */
const KNOWN_CYCLES: string[] = [];

const src = join(ROOT, 'src');

/** A source tree in a temp folder: path -> file text. */
function plantTree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'portcullis-imports-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

describe('the direction of imports in src/', () => {
  it('has no upward import beyond the known ones, and every known one still exists', () => {
    const found = upwardImports(readImportGraph(src));
    assert.deepEqual(
      found.filter((edge) => !KNOWN_UPWARD.includes(edge)),
      [],
      'imports point down: cli -> app -> transport -> wiring -> pipeline -> domain -> core',
    );
    assert.deepEqual(
      KNOWN_UPWARD.filter((edge) => !found.includes(edge)),
      [],
      'fixed: remove these from KNOWN_UPWARD',
    );
  });

  it('has no import cycle beyond the known ones, and every known one still exists', () => {
    const found = importCycles(readImportGraph(src)).map((ring) => ring.join(' <-> '));
    assert.deepEqual(
      found.filter((ring) => !KNOWN_CYCLES.includes(ring)),
      [],
      'no file imports itself through others',
    );
    assert.deepEqual(
      KNOWN_CYCLES.filter((ring) => !found.includes(ring)),
      [],
      'fixed: remove these from KNOWN_CYCLES',
    );
  });

  it('places every file of src/ in a layer', () => {
    const unplaced = [...readImportGraph(src).keys()].filter((file) => !layerOf(file));
    assert.deepEqual(unplaced, []);
  });
});

describe('the import checker', () => {
  it('reports a planted upward import from the core to the pipeline', () => {
    const root = plantTree({
      'errors.ts':
        "import type { CallContext } from './pipeline/context.ts';\nexport type E = CallContext;\n",
      'pipeline/context.ts':
        "import { PortcullisError } from '../errors.ts';\nexport type CallContext = PortcullisError;\n",
    });
    assert.deepEqual(upwardImports(readImportGraph(root)), ['errors.ts -> pipeline/context.ts']);
  });

  it('reports domain code that imports the transport, the pipeline or the wiring, and passes downward imports', () => {
    const graph = new Map([
      ['upstream/http.ts', new Set(['transport/sse.ts', 'jsonrpc.ts', 'identity/fetch.ts'])],
      ['policy/engine.ts', new Set(['pipeline/context.ts', 'config/schema.ts'])],
      ['identity/local.ts', new Set(['gateway.ts'])],
      ['transport/http-listener.ts', new Set(['gateway.ts', 'pipeline/runner.ts', 'session.ts'])],
      ['cli/serve.ts', new Set(['server.ts'])],
    ]);
    assert.deepEqual(upwardImports(graph), [
      'identity/local.ts -> gateway.ts',
      'policy/engine.ts -> pipeline/context.ts',
      'upstream/http.ts -> transport/sse.ts',
    ]);
  });

  it('refuses an import from or to a file no layer names', () => {
    const graph = new Map([['stray.ts', new Set(['errors.ts'])]]);
    assert.deepEqual(upwardImports(graph), ['stray.ts -> errors.ts']);
  });

  it('reports a planted cycle, and none in a tree without one', () => {
    const root = plantTree({
      'audit/a.ts': "export { b } from './b.ts';\nexport const a = 1;\n",
      'audit/b.ts': "export const b = async () => (await import('./c.ts')).c;\n",
      'audit/c.ts': "import { a } from './a.ts';\nexport const c = a;\n",
      'audit/d.ts': "import { a } from './a.ts';\nexport const d = a;\n",
    });
    assert.deepEqual(importCycles(readImportGraph(root)), [['audit/a.ts', 'audit/b.ts', 'audit/c.ts']]);
    assert.deepEqual(importCycles(new Map([['x.ts', new Set(['y.ts'])]])), []);
  });

  it('reads static imports, type imports, re-exports and dynamic imports of a literal, never bare packages', () => {
    const source = [
      "import { z } from 'zod';",
      "import type { A } from './a.ts';",
      "import {\n  b,\n  c,\n} from '../b.ts';",
      "export * from './c.ts';",
      "export { d } from './d.ts';",
      "const e = await import('./e.ts');",
      'const f = await import(name);',
    ].join('\n');
    assert.deepEqual(importsOf(source), ['./a.ts', '../b.ts', './c.ts', './d.ts', './e.ts']);
  });
});
