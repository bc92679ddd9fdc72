#!/usr/bin/env node
// Portcullis runs on Node.js >= 22.18 (TypeScript sources run through Node's type stripping).
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `portcullis: Node.js >= 22.18 is required (this is ${process.version}).\n` +
      'Run it through npm (`npm run portcullis -- ...` or `npx portcullis ...`), which uses the project-pinned Node 22.\n',
  );
  process.exit(2);
}
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (w.name !== 'ExperimentalWarning') process.stderr.write(`${w.stack ?? w}\n`);
});
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
