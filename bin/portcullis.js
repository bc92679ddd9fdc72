#!/usr/bin/env node
// Portcullis runs on the Node.js pinned in its own package (the `node` dependency,
// 26: TypeScript sources run through Node's type stripping, and V8 14 runs Cedar's
// Wasm without the deoptimizer abort V8 12.4 had). Whatever node
// started this file (npx runs bins on the machine's node), it re-launches itself
// on the pinned one. Keep this file plain ESM that old Node versions can parse.
import { spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const self = realpathSync(fileURLToPath(import.meta.url));
const pinned = join(
  dirname(self),
  '..',
  'node_modules',
  'node',
  'bin',
  process.platform === 'win32' ? 'node.exe' : 'node',
);
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function supported() {
  const [major] = process.versions.node.split('.').map(Number);
  return major >= 26;
}

function isPinned() {
  try {
    return realpathSync(process.execPath) === realpathSync(pinned);
  } catch {
    return false;
  }
}

function tooOld() {
  const why = isPinned()
    ? 'the pinned Node.js is an older one (installed before the pin moved)'
    : `the pinned Node.js is missing at ${pinned}`;
  process.stderr.write(
    `portcullis: Node.js >= 26 is required (this is ${process.version}), and ${why}.\n` +
      'Run `npm install` in the Portcullis folder: it installs the pinned Node.js 26.\n',
  );
  process.exit(2);
}

/** Runs this file again on the pinned node; its exit code (or signal) becomes ours. */
function relaunch() {
  const env = { ...process.env, PORTCULLIS_PINNED_NODE: pinned };
  // Children that run `node` (stdio upstreams, npx) get the pinned one too, as under `npm run`.
  env.PATH = [dirname(pinned), process.env.PATH].filter(Boolean).join(delimiter);
  const child = spawn(pinned, [self, ...process.argv.slice(2)], { stdio: 'inherit', env });
  const forward = (signal) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  for (const signal of SIGNALS) process.on(signal, forward);
  child.on('error', (err) => {
    for (const signal of SIGNALS) process.removeListener(signal, forward);
    if (!supported()) {
      process.stderr.write(`portcullis: cannot start the pinned Node.js at ${pinned}: ${err.message}\n`);
      process.exit(2);
    }
    run();
  });
  child.on('exit', (code, signal) => {
    for (const s of SIGNALS) process.removeListener(s, forward);
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}

async function run() {
  if (!supported()) tooOld();
  process.removeAllListeners('warning');
  process.on('warning', (w) => {
    if (w.name !== 'ExperimentalWarning') process.stderr.write(`${w.stack ?? w}\n`);
  });
  const { main } = await import('../src/cli/main.ts');
  process.exitCode = await main(process.argv.slice(2));
}

// The marker stops a loop if the pinned binary turns out not to be what it claims.
if (!isPinned() && existsSync(pinned) && process.env.PORTCULLIS_PINNED_NODE !== pinned) relaunch();
else await run();
