/**
 * The import graph of a source tree and the two rules it must keep: imports
 * point down the layers, and no file reaches itself through its imports.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, sep } from 'node:path';
import ts from 'typescript';

/** Top to bottom; a file may import its own layer or any layer below it. */
export const LAYERS = ['cli', 'app', 'transport', 'wiring', 'pipeline', 'domain', 'core'] as const;
export type Layer = (typeof LAYERS)[number];

/** Layer of each top-level folder of src/ (a file in it, unless `layerOf` says otherwise). */
const FOLDERS: Record<string, Layer> = {
  cli: 'cli',
  // The admin listener serves HTTP beside the gateway's own listener.
  admin: 'transport',
  transport: 'transport',
  pipeline: 'pipeline',
  identity: 'domain',
  policy: 'domain',
  audit: 'domain',
  upstream: 'domain',
  state: 'domain',
  approval: 'domain',
  breakglass: 'domain',
  // Tool-definition pins and the poisoning scanner; the aggregator and the result stage use them.
  pinning: 'domain',
  protect: 'domain',
  // How stdio upstreams are sandboxed (bubblewrap, the egress proxy); the upstream spawn path uses it.
  sandbox: 'domain',
  // The credential broker and its backends; the credentials stage and the gateway use them.
  credentials: 'domain',
  // Server pinning: what a stdio upstream runs, hashed and checked against its pin before each start.
  serverpin: 'domain',
  // Signed results and caller-signed requests: the attest stages and `portcullis attest verify` use it.
  attest: 'domain',
  config: 'core',
  protocol: 'core',
  // Logs, metrics and traces are used from every layer and import nothing above them.
  observability: 'core',
};

/** Layer of each top-level file of src/. */
const FILES: Record<string, Layer> = {
  // Starts the listeners around a gateway: above transport, below the CLI that calls it.
  'server.ts': 'app',
  // The one place the system is wired: listeners hold the gateway it builds, it builds the pipeline.
  'gateway.ts': 'wiring',
  // A client session (its principal, era and upstream instances) is domain state, shared by the domains.
  'session.ts': 'domain',
  'errors.ts': 'core',
  'jsonrpc.ts': 'core',
  'freeze.ts': 'core',
  'pg-statement.ts': 'core',
  'private-files.ts': 'core',
};

/** Files whose layer differs from their folder's. */
const OVERRIDES: Record<string, Layer> = {
  // The algorithm lists the identity config schema names; plain data that imports nothing.
  'identity/algorithms.ts': 'core',
  // The approvals.webhooks and approvals.callbacks pieces of the config schema: plain data the config core imports.
  'approval/webhook-config.ts': 'core',
  // The upstreams' sandbox section of the config schema: plain data the config core imports.
  'sandbox/config.ts': 'core',
};

/**
 * The layer of a file, by its path relative to src/ with `/` separators, or
 * undefined for a place no rule names (which the test refuses). A folder's own
 * `config.ts` is a piece of the one config schema, so it sits in the core.
 */
export function layerOf(file: string): Layer | undefined {
  if (OVERRIDES[file]) return OVERRIDES[file];
  const parts = file.split('/');
  if (parts.length === 1) return FILES[file];
  const folder = FOLDERS[parts[0]!];
  if (parts.length === 2 && parts[1] === 'config.ts' && folder !== 'cli') return 'core';
  return folder;
}

/** file -> the files it imports, every path relative to the root with `/` separators. */
export type ImportGraph = Map<string, Set<string>>;

/** The relative module names a source imports: static imports, `export … from`, and `import('…')` of a literal. */
export function importsOf(source: string): string[] {
  const file = ts.createSourceFile('x.ts', source, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      found.push(node.moduleSpecifier.text);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteralLike(node.arguments[0])
    ) {
      found.push(node.arguments[0].text);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found.filter((name) => name.startsWith('.'));
}

/** Reads every `.ts` file under `root` and the imports among them. */
export function readImportGraph(root: string): ImportGraph {
  const graph: ImportGraph = new Map();
  const files = readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  for (const file of files) {
    const from = file.split(sep).join('/');
    const targets = importsOf(readFileSync(join(root, file), 'utf8')).map((name) =>
      posix.normalize(posix.join(posix.dirname(from), name)),
    );
    graph.set(from, new Set(targets));
  }
  return graph;
}

/** Every import that points to a higher layer, or from a place no layer names, as `from -> to`. */
export function upwardImports(graph: ImportGraph): string[] {
  const found: string[] = [];
  for (const [from, targets] of graph) {
    for (const to of targets) {
      const a = layerOf(from);
      const b = layerOf(to);
      if (!a || !b || LAYERS.indexOf(b) < LAYERS.indexOf(a)) found.push(`${from} -> ${to}`);
    }
  }
  return found.sort();
}

/** Each set of files that import one another in a ring (strongly connected, Tarjan), its files sorted. */
export function importCycles(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const connect = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const ring: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      ring.push(w);
    } while (w !== v);
    if (ring.length > 1 || graph.get(v)?.has(v)) cycles.push(ring.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) connect(v);
  return cycles.sort((a, b) => a[0]!.localeCompare(b[0]!));
}
