#!/usr/bin/env node
/**
 * Masking cost, with every detector on (gitleaks' rules and the project's,
 * all PII types), the way a `mask` stage pays it: scan the decoded strings of
 * a tools/call result, mask what was found (redact), keep the summary.
 *
 * - throughput in MB/s (of the result's JSON) on a mixed 1 MiB result: a text
 *   content of logs, code and prose, structuredContent rows with names,
 *   e-mails and phone numbers, an embedded resource; about one secret per
 *   16 KiB;
 * - µs for a typical 2 KB result (a list of issues: titles, bodies, links,
 *   dates, one e-mail), and for one that also holds a key;
 * - recall and false positives on the secretlint corpus (shared/corpora).
 *
 *   node bench/masking-bench.ts [--seconds S]
 *
 * Wall time is what a call waits; CPU time (process.cpuUsage) is printed
 * beside it because on a loaded machine wall time also counts waiting for a core.
 */
import { parseArgs } from 'node:util';
import { compileDetectors } from '../src/protect/compile.ts';
import { type MaskedResult, type MaskPolicy, maskResult } from '../src/protect/result.ts';
import { loadCorpus, scoreCorpus } from '../test/protect/secretlint-corpus.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' } } });
const SECONDS = Number(values.seconds);
const policy: MaskPolicy = {
  mode: 'redact',
  bounds: { maxChars: 1 << 26, maxMillis: 60_000, maxDepth: 128 },
};

const PROSE = [
  'The quarterly report shows revenue growth of 12% across all regions, with the EMEA team leading.',
  'We moved the nightly export to 02:00 UTC so it no longer overlaps with the backup window.',
  'Customers on the legacy plan keep their limits until the renewal date in their contract.',
];
const CODE = [
  'function handler(req, res) { const id = req.params.id; return db.users.find({ id }).then((u) => res.json(u)); }',
  'for (const row of rows) { if (row.total > limit) flagged.push({ id: row.id, total: row.total }); }',
  'const client = new Client({ baseUrl: process.env.API_URL, timeoutMs: 30_000, retries: 3 });',
];
const LOGS = [
  '2026-11-02T10:11:12.345Z INFO request_id=5f2c9a1e path=/api/v1/orders status=200 duration_ms=42',
  '2026-11-02T10:11:13.018Z WARN request_id=9b7d0c44 path=/api/v1/search status=429 retry_after=5',
  '2026-11-02T10:11:14.902Z INFO worker=3 job=export rows=18234 elapsed=2.4s',
];
const SECRETS = [
  'export AWS_ACCESS_KEY_ID=AKIAZ7VRSQ5TQ4BGXM2Q',
  'GITHUB_TOKEN=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',
  'db: postgres://app:Zq8vN3xK2pR7@db.internal.example:5432/main',
];

/** A tools/call result of about `bytes` of JSON, mixed as described above. */
function mixedResult(bytes: number) {
  const lines: string[] = [];
  const rows: Record<string, unknown>[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const pool = [PROSE, CODE, LOGS][i % 3]!;
    const line = i % 160 === 159 ? SECRETS[((i / 160) % SECRETS.length) | 0]! : pool[i % pool.length]!;
    lines.push(line);
    size += line.length + 1;
    if (i % 4 === 0) {
      const row = {
        id: i,
        name: `Customer ${i}`,
        email: `customer${i}@example.com`,
        phone: i % 8 === 0 ? '+1 415 555 0132' : undefined,
        plan: 'legacy',
        updated: '2026-11-02T10:11:12Z',
      };
      rows.push(row);
      size += JSON.stringify(row).length;
    }
  }
  return {
    content: [
      { type: 'text', text: lines.join('\n') },
      { type: 'resource', resource: { uri: 'file:///srv/notes.md', text: PROSE.join('\n') } },
    ],
    structuredContent: { rows },
  };
}

/** About 2 KB: what a search tool returns. */
function typicalResult(withKey: boolean) {
  const issues = Array.from({ length: 6 }, (_, i) => ({
    number: 4120 + i,
    title: ['Export fails on large tables', 'Search returns stale results', 'Typo in onboarding mail'][i % 3],
    state: i % 2 ? 'open' : 'closed',
    url: `https://github.example.com/acme/app/issues/${4120 + i}`,
    created_at: `2026-10-2${i}T09:15:00Z`,
    labels: ['bug', 'p2'],
    body:
      i === 2
        ? 'Reported by jane.doe@example.com after the last release.'
        : 'Steps to reproduce are in the thread.',
  }));
  if (withKey) issues[4]!.body = 'The config has AWS_ACCESS_KEY_ID=AKIAZ7VRSQ5TQ4BGXM2Q in it.';
  return { content: [{ type: 'text', text: JSON.stringify(issues, null, 1) }] };
}

function measure(value: unknown, minSeconds: number): { wallMs: number; cpuMs: number; last: MaskedResult } {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let n = 0;
  let last: MaskedResult;
  do {
    last = maskResult(detectors, value, policy);
    n++;
  } while (performance.now() - t0 < minSeconds * 1000);
  const wallMs = (performance.now() - t0) / n;
  const cpu = process.cpuUsage(cpu0);
  return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000 / n, last: last! };
}

const t0 = performance.now();
const detectors = compileDetectors();
const compileMs = performance.now() - t0;

const mixed = mixedResult(1 << 20);
const mixedBytes = Buffer.byteLength(JSON.stringify(mixed));
measure(mixed, 1);
const big = measure(mixed, SECONDS);
const typical = typicalResult(false);
const typicalBytes = Buffer.byteLength(JSON.stringify(typical));
measure(typical, 1);
const small = measure(typical, SECONDS);
const smallKey = measure(typicalResult(true), SECONDS);

// The corpus holds secrets only (its ok cases have e-mail addresses in them): scored with the secret rules alone.
const secretRules = compileDetectors({ secrets: true, pii: [], custom: [] });
const score = scoreCorpus(loadCorpus(), (text) => secretRules.scanText(text));

const mbps = (ms: number) => mixedBytes / 1e6 / (ms / 1000);
console.log(
  `detectors compiled in ${compileMs.toFixed(0)} ms (${detectors.secrets?.ruleCount ?? 0} secret rules)`,
);
console.log(
  `mixed result ${(mixedBytes / 1e6).toFixed(2)} MB: ${mbps(big.wallMs).toFixed(1)} MB/s wall, ${mbps(big.cpuMs).toFixed(1)} MB/s CPU (target >= 100); masked ${JSON.stringify(big.last.summary)}`,
);
console.log(
  `typical result ${typicalBytes} B: ${(small.wallMs * 1000).toFixed(1)} µs wall, ${(small.cpuMs * 1000).toFixed(1)} µs CPU (target < 50); with a key: ${(smallKey.wallMs * 1000).toFixed(1)} µs wall, ${(smallKey.cpuMs * 1000).toFixed(1)} µs CPU`,
);
console.log(
  `secretlint corpus, secret rules: recall ${(score.recall * 100).toFixed(1)}% (${score.found}/${score.expected} secrets, target >= 95%), false positives ${(score.falsePositiveRate * 100).toFixed(1)}% (${score.falsePositives.length}/${score.negatives} ok cases, target <= 2%)`,
);
console.log(
  JSON.stringify({
    bench: 'masking',
    compileMs: Math.round(compileMs),
    mixedBytes,
    mbPerSecWall: Number(mbps(big.wallMs).toFixed(1)),
    mbPerSecCpu: Number(mbps(big.cpuMs).toFixed(1)),
    typicalBytes,
    typicalUsWall: Number((small.wallMs * 1000).toFixed(1)),
    typicalUsCpu: Number((small.cpuMs * 1000).toFixed(1)),
    typicalWithKeyUsWall: Number((smallKey.wallMs * 1000).toFixed(1)),
    corpusRecall: Number(score.recall.toFixed(4)),
    corpusFalsePositiveRate: Number(score.falsePositiveRate.toFixed(4)),
  }),
);
