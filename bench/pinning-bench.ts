#!/usr/bin/env node
/**
 * What tool pinning and the result scanner cost per call, in µs:
 *   node bench/pinning-bench.ts
 * - the inspect-result stage on a small result and on a 2 KB one (scan for
 *   injected instructions, strip tag characters and bidi controls);
 * - the quarantine check of a tools/call (one set lookup);
 * - the scanner on one tool definition (paid only at first sight or on a change).
 */
import { otherTools } from '../src/pinning/names.ts';
import { inspectResponse } from '../src/pinning/results.ts';
import { scanDefinition } from '../src/pinning/scanner.ts';

function time(label: string, n: number, once: (i: number) => unknown): void {
  for (let i = 0; i < Math.min(n, 2000); i++) once(i);
  const t = performance.now();
  for (let i = 0; i < n; i++) once(i);
  console.log(`${label}: ${(((performance.now() - t) * 1000) / n).toFixed(2)} µs`);
}

const small = {
  jsonrpc: '2.0' as const,
  id: 1,
  result: { content: [{ type: 'text', text: 'hello from echo' }] },
};
const prose =
  'The quarterly report lists 42 open items, 7 closed since Monday; see the tracker for details. ';
const twoKb = {
  jsonrpc: '2.0' as const,
  id: 1,
  result: {
    content: [{ type: 'text', text: prose.repeat(Math.ceil(2048 / prose.length)).slice(0, 2048) }],
    structuredContent: { items: 42, closed: 7, owner: 'ops' },
  },
};
const opts = { toolResult: true, threshold: 5 };
time('inspect-result, small result', 200_000, () => inspectResponse(small, opts));
time('inspect-result, 2 KB result', 50_000, () => inspectResponse(twoKb, opts));
const quarantined = new Set(['up/a', 'up/b']);
time('quarantine check on tools/call', 1_000_000, (i) => quarantined.has(`up/${i & 1 ? 'read' : 'b'}`));
const def = {
  name: 'read_text_file',
  description:
    'Read the complete contents of a file from the file system as text. Only works within allowed directories.',
  inputSchema: {
    type: 'object',
    properties: { path: { type: 'string' }, head: { type: 'number', description: 'First N lines' } },
  },
};
const others = otherTools('fs', new Map([['mem', ['read_graph', 'create_entities', 'mem__read_graph']]]));
time('scan one tool definition (first sight or change)', 20_000, () => scanDefinition(def, others));
