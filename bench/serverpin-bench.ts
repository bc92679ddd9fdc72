#!/usr/bin/env node
/**
 * What server pinning costs a start of a stdio upstream, in ms:
 *   node bench/serverpin-bench.ts
 * Resolving the launch and hashing what it runs: the first start in a process
 * hashes every file (the runtime binary most of all); later starts find each
 * file unchanged by its identity and only stat it. Nothing is paid per call.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileHasher } from '../src/serverpin/digest.ts';
import { fingerprint } from '../src/serverpin/fingerprint.ts';
import { type LaunchInput, resolveLaunch } from '../src/serverpin/launch.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const entry = (pkg: string) => join(ROOT, 'node_modules', pkg, 'dist', 'index.js');
const env = { PATH: process.env.PATH, HOME: process.env.HOME };
const targets: Record<string, LaunchInput> = {
  'node server-filesystem': {
    command: process.execPath,
    args: [entry('@modelcontextprotocol/server-filesystem')],
    cwd: ROOT,
    env,
  },
  'node server-everything': {
    command: process.execPath,
    args: [entry('@modelcontextprotocol/server-everything')],
    cwd: ROOT,
    env,
  },
  'npx -y server-memory': {
    command: 'npx',
    args: ['-y', '@modelcontextprotocol/server-memory'],
    cwd: ROOT,
    env,
  },
};

const hasher = new FileHasher();
for (const [name, input] of Object.entries(targets)) {
  const times: number[] = [];
  let files = 0;
  for (let i = 0; i < 21; i++) {
    const started = performance.now();
    const fp = await fingerprint(await resolveLaunch(input), hasher);
    times.push(performance.now() - started);
    files = fp.files.length + (fp.package?.files ?? 0);
  }
  const warm = times.slice(1).sort((a, b) => a - b);
  console.log(
    `server pin check, ${name} (${files} files): first ${times[0]!.toFixed(1)} ms, then median ${warm[10]!.toFixed(2)} ms`,
  );
}
