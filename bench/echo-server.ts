#!/usr/bin/env node
/**
 * Benchmark fixture: an SDK v2 McpServer with one trivial tool, `echo`, that
 * returns its `text` argument. It does as little as an MCP server can, so what
 * the benchmark measures is the transport and whatever sits in front of it.
 *
 *   node bench/echo-server.ts --stdio
 *   node bench/echo-server.ts [--port 0] [--host 127.0.0.1] [--tools N]
 *
 * `--tools N` lists N more tools beside `echo` (`tool_0` … `tool_N-1`, each
 * answering like `echo`, half of them read-only by their hints): the catalog
 * `npm run bench -- --scale` lists through the gateway.
 *
 * HTTP mode serves `/mcp` with the SDK's stateful 2025-era transport
 * (`NodeStreamableHTTPServerTransport` from @modelcontextprotocol/node): one
 * transport and one McpServer per session, opened by `initialize`, found again
 * by `Mcp-Session-Id`, ended by DELETE. Responses use the SDK's default
 * (an SSE stream per POST). When listening it prints one JSON line on stdout:
 *   {"event":"listening","url":"http://127.0.0.1:PORT/mcp"}
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

import { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import { isInitializeRequest, McpServer } from '@modelcontextprotocol/server';
import { StdioServerTransport } from '@modelcontextprotocol/server/stdio';
import { z } from 'zod';

const { values } = parseArgs({
  options: {
    stdio: { type: 'boolean', default: false },
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    tools: { type: 'string', default: '0' },
  },
});
const EXTRA_TOOLS = Number(values.tools);

function buildServer() {
  const server = new McpServer({ name: 'bench-echo', version: '1.0.0' });
  server.registerTool(
    'echo',
    { description: 'Returns its input', inputSchema: z.object({ text: z.string() }) },
    async ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  for (let i = 0; i < EXTRA_TOOLS; i++) {
    server.registerTool(
      `tool_${i}`,
      {
        description: `Scale fixture tool ${i}`,
        inputSchema: z.object({ text: z.string() }),
        annotations: { readOnlyHint: i % 2 === 0, destructiveHint: i % 10 === 9 },
      },
      async ({ text }) => ({ content: [{ type: 'text', text }] }),
    );
  }
  return server;
}

if (values.stdio) {
  await buildServer().connect(new StdioServerTransport());
} else {
  const sessions = new Map<string, NodeStreamableHTTPServerTransport>();

  const sendError = (res: ServerResponse, status: number, code: number, message: string) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
  };

  const readBody = async (req: IncomingMessage): Promise<unknown> => {
    if (req.method !== 'POST') return undefined;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk);
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return null;
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/mcp') {
      res.writeHead(404).end('Not Found');
      return;
    }
    const body = await readBody(req);
    if (body === null) return sendError(res, 400, -32700, 'Parse error');
    const sessionId = req.headers['mcp-session-id'];
    const existing = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
    if (existing) return existing.handleRequest(req, res, body);
    if (sessionId) return sendError(res, 404, -32001, 'Session not found');
    if (req.method !== 'POST' || !isInitializeRequest(body)) {
      return sendError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
    }
    const server = buildServer();
    const transport = new NodeStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, transport);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
      void server.close();
    };
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  };

  const http = createServer((req, res) => {
    handle(req, res).catch((err) => {
      process.stderr.write(`[echo-server] ${String(err)}\n`);
      if (!res.headersSent) sendError(res, 500, -32603, 'Internal error');
      else res.end();
    });
  });
  http.keepAliveTimeout = 60_000;
  http.listen(Number(values.port), values.host, () => {
    const { port } = http.address() as AddressInfo;
    process.stdout.write(
      `${JSON.stringify({ event: 'listening', url: `http://${values.host}:${port}/mcp` })}\n`,
    );
  });
  const shutdown = () => {
    for (const t of sessions.values()) void t.close();
    http.close(() => process.exit(0));
    http.closeAllConnections();
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}
