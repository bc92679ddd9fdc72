/**
 * Runs inside a sandbox in allowlist mode, as the parent of the upstream:
 * listens on 127.0.0.1:PORT in the sandbox's own (otherwise empty) network
 * namespace and pipes each connection to the gateway's egress proxy, reached
 * only through the unix socket bound in. Then it runs the upstream on the
 * same stdio and ends as it ends. Only node: modules: nothing else may be
 * visible in the sandbox.
 *
 * usage: node bridge.ts PORT SOCKET -- COMMAND [ARGS...]
 */
import { spawn } from 'node:child_process';
import { connect, createServer } from 'node:net';

const [port, socket, separator, command, ...args] = process.argv.slice(2);
if (!port || !socket || separator !== '--' || !command) {
  process.stderr.write('usage: bridge PORT SOCKET -- COMMAND [ARGS...]\n');
  process.exit(2);
}

const server = createServer((inside) => {
  const outside = connect(socket);
  inside.pipe(outside).pipe(inside);
  inside.on('error', () => outside.destroy());
  outside.on('error', () => inside.destroy());
});

server.listen(Number(port), '127.0.0.1', () => {
  const child = spawn(command, args, { stdio: 'inherit' });
  child.on('error', (err) => {
    process.stderr.write(`bridge: cannot start ${command}: ${err.message}\n`);
    process.exit(127);
  });
  child.on('exit', (code, signal) => {
    server.close();
    // The upstream's own end, as the gateway would have seen it without the bridge.
    if (signal) process.kill(process.pid, signal);
    process.exit(code ?? 1);
  });
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => child.kill(sig));
});
