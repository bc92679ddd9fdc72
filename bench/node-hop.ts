#!/usr/bin/env node
// A bare Node reverse proxy: what one extra `node:http` hop costs, with no security work at all.
// Usage: node bench/node-hop.ts --upstream URL [--port N]; prints {"event":"listening","url":…}.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const arg = (name: string, fallback?: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const upstream = new URL(arg('upstream') ?? '');
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host']);

const server = http.createServer((req, res) => {
  const headers: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
  const out = http.request(upstream, { method: req.method, headers, agent }, (up) => {
    const back: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(up.headers)) if (!HOP_BY_HOP.has(k)) back[k] = v;
    res.writeHead(up.statusCode ?? 502, back);
    up.pipe(res);
  });
  out.on('error', () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(out);
});
server.keepAliveTimeout = 60_000;
server.listen(Number(arg('port', '0')), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  console.log(JSON.stringify({ event: 'listening', url: `http://127.0.0.1:${port}${upstream.pathname}` }));
});
