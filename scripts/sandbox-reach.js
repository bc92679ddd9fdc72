// Run before `npm test`. Under root, sandboxed upstreams run as nobody (uid 65534),
// who must pass through every folder above this checkout to reach node and the
// servers. A checkout inside a folder closed to others (`mktemp -d` makes one,
// mode 0700) is given search permission for others (o+x: pass through, not list)
// on each such folder, and this says so; nothing else is changed.
import { chmodSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
if (process.getuid?.() === 0) {
  for (let dir = root; ; dir = dirname(dir)) {
    const mode = statSync(dir).mode;
    if ((mode & 0o001) === 0) {
      chmodSync(dir, (mode & 0o7777) | 0o001);
      process.stderr.write(
        `pretest: ${dir} opened to others for search (o+x) so sandboxed test upstreams can reach the checkout\n`,
      );
    }
    if (dir === dirname(dir)) break;
  }
}
